/**
 * @module Token counts for admission estimates and for billing streams that ended early.
 * gpt-tokenizer is loaded on first use and only for texts under a size cap: it runs at
 * ~1 MB/s here, so big prompts are estimated as ceil(utf8 bytes / 4) instead.
 */
type Tokenizer = { countTokens(text: string): number };
let tokenizer: Tokenizer | null = null;

const TOKENIZE_CAP_CHARS = 32 * 1024;

export function countTextTokens(text: string): number {
  if (!text) return 0;
  if (text.length > TOKENIZE_CAP_CHARS) return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  tokenizer ??= require('gpt-tokenizer') as Tokenizer;
  return tokenizer.countTokens(text);
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

/** OpenAI's chat accounting: ~4 tokens of framing per message plus 3 to prime the reply. */
export function countChatPromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let total = 3;
  for (const message of messages) {
    if (!message || typeof message !== 'object') continue;
    const m = message as { content?: unknown; name?: unknown; tool_calls?: unknown };
    total += 4 + countTextTokens(contentText(m.content));
    if (typeof m.name === 'string') total += countTextTokens(m.name);
    if (m.tool_calls) total += countTextTokens(JSON.stringify(m.tool_calls));
  }
  return total;
}

export function countEmbeddingInputTokens(input: unknown): number {
  if (typeof input === 'string') return countTextTokens(input);
  if (Array.isArray(input)) {
    return input.reduce<number>((sum, item) => sum + (typeof item === 'string' ? countTextTokens(item) : Array.isArray(item) ? item.length : 0), 0);
  }
  return 0;
}
