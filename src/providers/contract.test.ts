/**
 * One contract, every provider: each adapter's stream translator replays recorded-format
 * fixtures and must (1) deliver the text, (2) report the provider's usage exactly, complete
 * only at the end, (3) hide the usage it was asked for from a client that did not ask, and
 * (4) never claim a finished stream or complete usage when the stream is cut short.
 */
import { describe, expect, it } from 'vitest';
import type { TokenUsage } from '../pricing/prices';
import { adapterFor } from './registry';
import { contextFor, fixtureEvents } from './fixtures.test-support';
import type { SseEvent, StreamTranslator } from './types';

interface StreamCase {
  provider: string;
  fixture: string;
  text: string;
  usage: TokenUsage;
}

const CASES: StreamCase[] = [
  { provider: 'openai', fixture: 'openai-compatible/__fixtures__/openai-text.chunks.txt', text: 'Paris is the capital of France.', usage: { promptTokens: 1543, completionTokens: 8, cachedPromptTokens: 1280 } },
  { provider: 'mistral', fixture: 'openai-compatible/__fixtures__/mistral-text.chunks.txt', text: 'Paris is the capital of France.', usage: { promptTokens: 12, completionTokens: 8, cachedPromptTokens: 0 } },
  { provider: 'groq', fixture: 'openai-compatible/__fixtures__/groq-text.chunks.txt', text: 'Paris is the capital of France.', usage: { promptTokens: 44, completionTokens: 8, cachedPromptTokens: 0 } },
  { provider: 'azure', fixture: 'openai-compatible/__fixtures__/openai-text.chunks.txt', text: 'Paris is the capital of France.', usage: { promptTokens: 1543, completionTokens: 8, cachedPromptTokens: 1280 } },
  { provider: 'anthropic', fixture: 'anthropic/__fixtures__/anthropic-text.chunks.txt', text: 'Paris is the capital of France.', usage: { promptTokens: 21 + 1200 + 3400, completionTokens: 9, cachedPromptTokens: 3400, cacheWriteTokens: 1200 } },
];

function replay(translator: StreamTranslator, events: SseEvent[]): string[] {
  // Chat translators emit bare `data:` payloads only.
  return events.flatMap((event) => translator.onEvent(event)).map((payload) => (typeof payload === 'string' ? payload : payload.data));
}

function contentOf(payloads: string[]): string {
  return payloads
    .filter((payload) => payload !== '[DONE]')
    .map((payload) => (JSON.parse(payload) as { choices: { delta?: { content?: string } }[] }).choices.map((choice) => choice.delta?.content ?? '').join(''))
    .join('');
}

describe.each(CASES)('stream contract: $provider ($fixture)', ({ provider, fixture, text, usage }) => {
  const events = fixtureEvents(fixture);
  const adapter = adapterFor(provider);

  it('delivers the text and the exact provider usage, complete at the end', () => {
    const translator = adapter.createStreamTranslator(contextFor(provider, false));
    const payloads = replay(translator, events);
    expect(contentOf(payloads)).toBe(text);
    expect(translator.deliveredText).toBe(text);
    expect(translator.usage).toEqual(expect.objectContaining(usage));
    expect(translator.usageComplete).toBe(true);
    expect(translator.finished).toBe(true);
    expect(translator.finish()).toEqual(['[DONE]']);
  });

  it('keeps the usage from a client that did not ask, and gives it to one that did', () => {
    const hidden = replay(adapter.createStreamTranslator(contextFor(provider, false)), events);
    expect(hidden.filter((payload) => /"usage":\{/.test(payload) && !payload.includes('x_groq'))).toEqual([]);
    const shown = replay(adapter.createStreamTranslator(contextFor(provider, true)), events)
      .map((payload) => JSON.parse(payload) as { usage?: { prompt_tokens: number } | null; x_groq?: unknown })
      .filter((chunk) => chunk.usage);
    if (provider !== 'groq') expect(shown.map((chunk) => chunk.usage!.prompt_tokens)).toEqual([usage.promptTokens]);
  });

  it('reports neither a finished stream nor complete usage when cut after the first content', () => {
    const firstContent = events.findIndex((event) => /"(text|content)":"[^"]/.test(event.data) && !event.data.includes('"role":"assistant","content":""'));
    const translator = adapter.createStreamTranslator(contextFor(provider, false));
    replay(translator, events.slice(0, firstContent + 1));
    expect(translator.finished).toBe(false);
    expect(translator.usageComplete).toBe(false);
    expect(translator.deliveredText.length).toBeGreaterThan(0);
    expect(text.startsWith(translator.deliveredText)).toBe(true);
  });
});
