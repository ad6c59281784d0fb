import { describe, expect, it } from 'vitest';
import { readTiktokenRanks } from './tokenizer-ranks';

describe('the o200k_base rank table read from the data file', () => {
  it('is gpt-tokenizer\'s own table, entry for entry (BOM-led and non-UTF-8 tokens too)', () => {
    const fromFile = readTiktokenRanks(require.resolve('gpt-tokenizer/data/o200k_base.tiktoken'));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const shipped = (require('gpt-tokenizer/cjs/bpeRanks/o200k_base') as { default: (string | number[])[] }).default;
    expect(fromFile.length).toBe(shipped.length);
    const differing = shipped.flatMap((token, rank) => (JSON.stringify(token) === JSON.stringify(fromFile[rank]) ? [] : [rank]));
    expect(differing).toEqual([]);
    // The two kinds of entry are both there: a plain word, and bytes that are not UTF-8 alone.
    expect(fromFile[5574]).toEqual([0xef, 0xbb, 0xbf]);
    expect(fromFile.some((token) => Array.isArray(token) && token[0] !== 0xef)).toBe(true);
  });
});
