/**
 * @module Token counts, two kinds. Admission needs an UPPER bound, at once and cheaply (it
 * reserves budget): `estimate…` tokenizes only the first few KB of a request and bounds the
 * rest by its UTF-8 length (a byte-level BPE token is at least one byte, so bytes >= tokens
 * for any such tokenizer). Billing without provider usage needs the real count: `count…`
 * tokenizes everything but yields to the event loop every couple of ms, so a 9 MB chat never
 * stalls the other requests. gpt-tokenizer (~7 MB/s here) takes most of a second to load:
 * the gateway loads it before it listens (loadTokenizer), not on a request.
 */
import { readTiktokenRanks } from './tokenizer-ranks';

type EncodeOptions = { disallowedSpecial?: Set<string> };
type Tokenizer = { countTokens(text: string, options?: EncodeOptions): number };
let tokenizer: Tokenizer | null = null;

// Text that looks like "<|endoftext|>" is ordinary text from a client, not a control token
// (gpt-tokenizer would throw on it by default).
const AS_PLAIN_TEXT: EncodeOptions = { disallowedSpecial: new Set() };

/** Characters tokenized exactly per admission estimate (about 1 ms); beyond, the byte bound. */
const ESTIMATE_EXACT_CHARS = 8 * 1024;
/**
 * Longest piece tokenized in one go when counting exactly (about 2 ms). Not below the
 * estimate's allowance: a text the estimate tokenizes whole is counted whole here too.
 */
const COUNT_PIECE_CHARS = ESTIMATE_EXACT_CHARS;
/** CPU time one count may hold the event loop before letting others run. */
const SLICE_MS = 2;

/**
 * Merge results the tokenizer remembers (its default, 100k, lets a busy process grow by tens of
 * MB of cached words); the common words of a language fit in far fewer.
 */
const MERGE_CACHE_SIZE = 10_000;

/** Loads the tokenizer (its rank tables) now, so that no request waits for it. */
export function loadTokenizer(): Tokenizer {
  if (tokenizer) return tokenizer;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { GptEncoding } = require('gpt-tokenizer/cjs/GptEncoding') as typeof import('gpt-tokenizer/cjs/GptEncoding');
  const ranks = readTiktokenRanks(require.resolve('gpt-tokenizer/data/o200k_base.tiktoken'));
  const encoding = GptEncoding.getEncodingApi('o200k_base', () => ranks);
  encoding.setMergeCacheSize(MERGE_CACHE_SIZE);
  tokenizer = encoding;
  return tokenizer;
}

function tokenize(text: string): number {
  return loadTokenizer().countTokens(text, AS_PLAIN_TEXT);
}

/** Exact count of a short text, synchronously; long texts get their byte bound. */
export function countTextTokens(text: string): number {
  if (!text) return 0;
  if (text.length > ESTIMATE_EXACT_CHARS) return Buffer.byteLength(text, 'utf8');
  return tokenize(text);
}

/** Hands the event loop back when this count has run for a slice. */
class CpuSlice {
  private started = performance.now();

  async yieldIfDue(): Promise<void> {
    if (performance.now() - this.started < SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.started = performance.now();
  }
}

/**
 * The next cut at or before `limit`: before a single space between two non-blank characters,
 * which the GPT pre-tokenizers always split at (the space goes with the next word), so the
 * pieces' counts add up to the whole text's. A text without one is cut where it must be.
 */
function pieceEnd(text: string, from: number, limit: number): number {
  const end = Math.min(text.length, from + limit);
  if (end === text.length) return end;
  for (let space = text.lastIndexOf(' ', end); space > from; space = text.lastIndexOf(' ', space - 1)) {
    if (/\S/.test(text[space - 1]!) && /\S/.test(text[space + 1] ?? '')) return space;
  }
  return end;
}

async function countTextTokensYielding(text: string, slice: CpuSlice): Promise<number> {
  let total = 0;
  for (let at = 0; at < text.length; ) {
    const end = pieceEnd(text, at, COUNT_PIECE_CHARS);
    total += tokenize(text.slice(at, end));
    at = end;
    await slice.yieldIfDue();
  }
  return total;
}

/** The real token count of a text (e.g. a completion), yielding while it counts. */
export function countTextTokensExact(text: string): Promise<number> {
  return countTextTokensYielding(text, new CpuSlice());
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : ''))
      .join('\n');
  }
  return '';
}

/** The texts of a chat that count as prompt tokens, message by message. */
function* chatTexts(messages: unknown): Generator<string[]> {
  if (!Array.isArray(messages)) return;
  for (const message of messages) {
    if (!message || typeof message !== 'object') continue;
    const m = message as { content?: unknown; name?: unknown; tool_calls?: unknown };
    const texts = [contentText(m.content)];
    if (typeof m.name === 'string') texts.push(m.name);
    if (m.tool_calls) texts.push(JSON.stringify(m.tool_calls));
    yield texts;
  }
}

/** OpenAI's chat accounting: ~4 tokens of framing per message plus 3 to prime the reply. */
const PRIMING_TOKENS = 3;
const PER_MESSAGE_TOKENS = 4;

/** Bounds texts from above within one request's exact-tokenizing allowance. */
class UpperBound {
  private exactCharsLeft = ESTIMATE_EXACT_CHARS;

  of(text: string): number {
    if (!text) return 0;
    if (text.length <= this.exactCharsLeft) {
      this.exactCharsLeft -= text.length;
      return tokenize(text);
    }
    return Buffer.byteLength(text, 'utf8');
  }
}

/**
 * Above this, a request's own size is its estimate: its JSON holds every text in at least
 * its UTF-8 bytes, and each message's JSON framing (`{"role":…}`) outweighs its framing tokens.
 */
const ESTIMATE_FROM_BODY_BYTES = 64 * 1024;

/**
 * An upper bound of a chat's prompt tokens, in a few ms whatever its size: for admission.
 * `bodyBytes`, the size of the request it came in, bounds a big one at once.
 */
export function estimateChatPromptTokens(messages: unknown, bodyBytes = 0): number {
  if (!Array.isArray(messages)) return 0;
  if (bodyBytes > ESTIMATE_FROM_BODY_BYTES) return bodyBytes;
  const bound = new UpperBound();
  let total = PRIMING_TOKENS;
  // A plain loop (no generator, no arrays): this runs on every request, over 100k+ messages for a big one.
  for (const message of messages) {
    if (!message || typeof message !== 'object') continue;
    const m = message as { content?: unknown; name?: unknown; tool_calls?: unknown };
    total += PER_MESSAGE_TOKENS + bound.of(contentText(m.content));
    if (typeof m.name === 'string') total += bound.of(m.name);
    if (m.tool_calls) total += bound.of(JSON.stringify(m.tool_calls));
  }
  return total;
}

/** The real prompt tokens of a chat, yielding while it counts: for billing without usage. */
export async function countChatPromptTokensExact(messages: unknown): Promise<number> {
  const slice = new CpuSlice();
  let total = PRIMING_TOKENS;
  for (const texts of chatTexts(messages)) {
    total += PER_MESSAGE_TOKENS;
    for (const text of texts) if (text) total += await countTextTokensYielding(text, slice);
  }
  return total;
}

function embeddingItems(input: unknown): (string | number)[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return [];
  // A string, or an array of token ids already counted by its length.
  return input.map((item) => (typeof item === 'string' ? item : Array.isArray(item) ? item.length : 0));
}

/** An upper bound of an embeddings input's tokens, cheap: for admission (see estimateChatPromptTokens). */
export function estimateEmbeddingInputTokens(input: unknown, bodyBytes = 0): number {
  // Token ids take at least two bytes each in JSON (a digit and a comma): the bound holds for them too.
  if (bodyBytes > ESTIMATE_FROM_BODY_BYTES) return bodyBytes;
  const bound = new UpperBound();
  return embeddingItems(input).reduce<number>((sum, item) => sum + (typeof item === 'number' ? item : bound.of(item)), 0);
}

/** The real tokens of an embeddings input, yielding while it counts. */
export async function countEmbeddingInputTokensExact(input: unknown): Promise<number> {
  const slice = new CpuSlice();
  let total = 0;
  for (const item of embeddingItems(input)) total += typeof item === 'number' ? item : await countTextTokensYielding(item, slice);
  return total;
}
