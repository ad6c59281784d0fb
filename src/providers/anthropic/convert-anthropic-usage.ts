/**
 * @module Anthropic usage → TokenUsage and OpenAI `usage`. Anthropic's `input_tokens` excludes
 * cached tokens, so the prompt is input + cache reads + cache writes; reads and writes are kept
 * apart so each is priced at its own rate (reads ~0.1×, writes ~1.25× the input price).
 */
import type { TokenUsage } from '../../pricing/prices';

export interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  /** The split of cache writes by lifetime (present when the request used `ttl`). */
  cache_creation?: { ephemeral_5m_input_tokens?: number | null; ephemeral_1h_input_tokens?: number | null } | null;
}

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0);

export function convertAnthropicUsage(usage: AnthropicUsage | null | undefined): TokenUsage | null {
  if (!usage || typeof usage !== 'object' || typeof usage.input_tokens !== 'number') return null;
  const cacheRead = count(usage.cache_read_input_tokens);
  const cacheWrite = count(usage.cache_creation_input_tokens);
  const cacheWrite1h = Math.min(cacheWrite, count(usage.cache_creation?.ephemeral_1h_input_tokens));
  const converted: TokenUsage = {
    promptTokens: count(usage.input_tokens) + cacheRead + cacheWrite,
    completionTokens: count(usage.output_tokens),
    cachedPromptTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
  };
  if (cacheWrite1h > 0) converted.cacheWrite1hTokens = cacheWrite1h;
  return converted;
}

/**
 * Merges a later usage report into an earlier one: message_delta carries cumulative counts,
 * and fields it leaves out (or null) keep their message_start value.
 */
export function mergeAnthropicUsage(earlier: AnthropicUsage, later: AnthropicUsage | null | undefined): AnthropicUsage {
  const merged: AnthropicUsage = { ...earlier };
  if (!later) return merged;
  for (const field of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const) {
    if (typeof later[field] === 'number') merged[field] = later[field];
  }
  if (later.cache_creation && typeof later.cache_creation === 'object') merged.cache_creation = later.cache_creation;
  return merged;
}

/** The OpenAI `usage` object clients see (LiteLLM also repeats the cache fields at top level). */
export function toOpenAIUsage(usage: TokenUsage): Record<string, unknown> {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens ?? 0 },
    cache_read_input_tokens: usage.cachedPromptTokens ?? 0,
    cache_creation_input_tokens: usage.cacheWriteTokens ?? 0,
  };
}
