/** @module OpenAI `usage` → TokenUsage (cached prompt tokens kept, so they are priced as cached). */
import type { TokenUsage } from '../../pricing/prices';

export function convertOpenAIUsage(usage: unknown): TokenUsage | null {
  if (!usage || typeof usage !== 'object') return null;
  const u = usage as {
    prompt_tokens?: unknown;
    completion_tokens?: unknown;
    total_tokens?: unknown;
    prompt_tokens_details?: { cached_tokens?: unknown } | null;
  };
  if (typeof u.prompt_tokens !== 'number') return null;
  const completion = typeof u.completion_tokens === 'number' ? u.completion_tokens : 0;
  const cached = typeof u.prompt_tokens_details?.cached_tokens === 'number' ? u.prompt_tokens_details.cached_tokens : 0;
  return { promptTokens: u.prompt_tokens, completionTokens: completion, cachedPromptTokens: cached };
}
