import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { countTokens } from 'gpt-tokenizer';
import { loadTokenizer, countChatPromptTokensExact, countEmbeddingInputTokensExact, countTextTokensExact, estimateChatPromptTokens, estimateEmbeddingInputTokens } from './tokens';

const plain = (text: string) => countTokens(text, { disallowedSpecial: new Set() });

/** Texts of every kind a client sends: words, CJK, emoji, control-token look-alikes, long runs. */
const text = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.constantFrom('<|endoftext|>', '<|im_start|>user', '日本語のテキスト', '😀👍🏽', '    \n\n\t', 'a'.repeat(5000)),
  fc.array(fc.constantFrom('lorem ', 'ipsum ', 'dolor\n', '42 ', '£€ ', '  '), { maxLength: 4000 }).map((parts) => parts.join('')),
);
const message = fc.record({
  role: fc.constantFrom('system', 'user', 'assistant', 'tool'),
  content: fc.oneof(text, fc.array(fc.record({ type: fc.constant('text'), text }), { maxLength: 3 })),
  name: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
});

describe('token counts', () => {
  it('the admission estimate is never below the real count (chat and embeddings)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 40 }), async (messages) => {
        expect(estimateChatPromptTokens(messages)).toBeGreaterThanOrEqual(await countChatPromptTokensExact(messages));
      }),
      { seed: 20261201, numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(text, { minLength: 1, maxLength: 20 }), async (input) => {
        expect(estimateEmbeddingInputTokens(input)).toBeGreaterThanOrEqual(await countEmbeddingInputTokensExact(input));
      }),
      { seed: 20261201, numRuns: 200 },
    );
  });

  it('counts exactly what the tokenizer counts, in pieces, and treats control-token look-alikes as text', async () => {
    const long = 'The quick brown fox jumps over the lazy dog. '.repeat(3000);
    expect(await countTextTokensExact(long)).toBe(plain(long));
    expect(await countTextTokensExact('hello <|endoftext|> world')).toBe(plain('hello <|endoftext|> world'));
    const messages = [{ role: 'user', content: 'hello <|endoftext|>' }];
    expect(estimateChatPromptTokens(messages)).toBe(await countChatPromptTokensExact(messages)); // small: exact both ways
  });

  it('bounds a big request by its size, which is never below its real count', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 50, maxLength: 200 }), async (messages) => {
        const bytes = Buffer.byteLength(JSON.stringify({ model: 'm', messages }));
        const exact = await countChatPromptTokensExact(messages);
        expect(bytes).toBeGreaterThanOrEqual(exact); // whichever way the estimate goes
        expect(estimateChatPromptTokens(messages, bytes)).toBeGreaterThanOrEqual(exact);
      }),
      { seed: 20261201, numRuns: 30 },
    );
    const input = ['日本語のテキスト😀 '.repeat(10_000), 'word '.repeat(20_000)];
    const bytes = Buffer.byteLength(JSON.stringify({ model: 'e', input }));
    expect(estimateEmbeddingInputTokens(input, bytes)).toBe(bytes);
    expect(bytes).toBeGreaterThanOrEqual(await countEmbeddingInputTokensExact(input));
  });

  it('estimates a 9 MB chat of short messages without tokenizing more than its allowance', () => {
    const tokenizer = loadTokenizer(); // the gateway loads it at start
    const messages = Array.from({ length: 150_000 }, (_, i) => ({ role: 'user', content: `short message number ${i} hi` }));
    // What the estimate hands the tokenizer is what it costs (a full tokenization is ~1.5 s):
    // counted, not timed, so a loaded machine cannot fail it.
    let tokenizedChars = 0;
    const count = vi.spyOn(tokenizer, 'countTokens').mockImplementation(function (this: unknown, text: unknown) {
      tokenizedChars += String(text).length;
      return Math.ceil(String(text).length / 2);
    } as typeof tokenizer.countTokens);
    try {
      const estimate = estimateChatPromptTokens(messages);
      expect(estimate).toBeGreaterThan(150_000 * 5);
      expect(tokenizedChars).toBeLessThanOrEqual(8 * 1024);
    } finally {
      count.mockRestore();
    }
  });
});
