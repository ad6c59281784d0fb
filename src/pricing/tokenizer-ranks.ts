/**
 * @module The o200k_base rank table, read from the `.tiktoken` data file gpt-tokenizer ships
 * (one "base64-token rank" per line) instead of its JS module. That module is a 2.4 MB array
 * literal: compiling and running it left 56 MB resident, parsing the data file 43 MB,
 * in every process and every body worker. The table is the same, entry for entry (tested).
 */
import { readFileSync } from 'node:fs';

/** Index = rank; a token's text where its bytes are UTF-8, else its bytes (gpt-tokenizer's shape). */
export type RankTable = (string | number[])[];

export function readTiktokenRanks(path: string): RankTable {
  const text = readFileSync(path, 'latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const ranks: RankTable = [];
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const space = text.indexOf(' ', start);
    if (space > start && space < end) {
      const bytes = Buffer.from(text.slice(start, space), 'base64');
      const rank = Number(text.slice(space + 1, end));
      ranks[rank] = utf8Text(utf8, bytes) ?? [...bytes];
    }
    start = end + 1;
  }
  return ranks;
}

/**
 * The token's text, or null where it stays bytes: not UTF-8 on its own (part of a character),
 * or led by the bytes of U+FEFF, which gpt-tokenizer keeps as bytes (a decoder would take them
 * for a byte-order mark and drop them).
 */
function utf8Text(utf8: { decode(bytes: Uint8Array): string }, bytes: Uint8Array): string | null {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return null;
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}
