/**
 * @module Prices per token in pico-USD: config overrides first, then the maintained table
 * of @pydantic/genai-prices (bundled data; we never call its network update). Each model's
 * record is resolved once at start-up; the hot path only multiplies integers.
 */
import { calcPrice } from '@pydantic/genai-prices';
import { dollarsToPico, type Pico } from '../shared/money';

export interface ModelPrice {
  inputPerToken: Pico;
  outputPerToken: Pico;
  cacheReadPerToken: Pico;
  cacheWritePerToken: Pico;
  /**
   * Anthropic's 1-hour cache writes (`cache_control.ttl: "1h"`), priced above the 5-minute ones:
   * config `cache_creation_input_token_cost_above_1hr`, else twice the input price (Anthropic's rule).
   */
  cacheWrite1hPerToken?: Pico;
  /** Where the numbers came from, for logs and /model info. */
  source: 'config' | 'genai-prices';
}

export interface PriceOverrides {
  input_cost_per_token?: number;
  output_cost_per_token?: number;
  cache_read_input_token_cost?: number;
  cache_creation_input_token_cost?: number;
  cache_creation_input_token_cost_above_1hr?: number;
}

/** Our provider prefix → genai-prices provider id. */
const PRICE_PROVIDER_ALIASES: Record<string, string> = {
  azure: 'azure',
  openai: 'openai',
  anthropic: 'anthropic',
  mistral: 'mistral',
  groq: 'groq',
  together_ai: 'together',
  deepseek: 'deepseek',
  fireworks_ai: 'fireworks',
  openrouter: 'openrouter',
  gemini: 'google',
  xai: 'x-ai',
  cohere: 'cohere',
};

/**
 * Servers you run yourself: a cloud price for the same weights would be a guess, so these
 * must be priced in the config (0 for free) or start-up stops.
 */
const SELF_HOSTED_PROVIDERS = new Set(['ollama', 'ollama_chat', 'hosted_vllm', 'vllm', 'lm_studio', 'llamafile', 'openai_like']);

/** Per-million-token price (dollars) → per-token pico-USD, exactly. */
function perMillionToPico(value: unknown): Pico {
  if (typeof value === 'number') return dollarsToPico(value) / 1_000_000n;
  if (value && typeof value === 'object' && 'base' in value) return perMillionToPico((value as { base: number }).base);
  return 0n;
}

export function lookupTablePrice(provider: string, model: string): ModelPrice | null {
  if (SELF_HOSTED_PROVIDERS.has(provider)) return null;
  // The provider's own price first; then any provider selling a model of that name.
  const tryIds = PRICE_PROVIDER_ALIASES[provider] ? [PRICE_PROVIDER_ALIASES[provider], undefined] : [undefined];
  for (const providerId of tryIds) {
    let result;
    try {
      result = calcPrice({ input_tokens: 1, output_tokens: 1 }, model, providerId ? { providerId } : {});
    } catch {
      result = null;
    }
    if (result) {
      const p = result.model_price as Record<string, unknown>;
      return {
        inputPerToken: perMillionToPico(p.input_mtok),
        outputPerToken: perMillionToPico(p.output_mtok),
        cacheReadPerToken: perMillionToPico(p.cache_read_mtok ?? p.input_mtok),
        cacheWritePerToken: perMillionToPico(p.cache_write_mtok ?? p.input_mtok),
        source: 'genai-prices',
      };
    }
  }
  return null;
}

/**
 * Config prices win field by field; a model is priced when both input and output prices are
 * known from either source. Returns null when the model cannot be priced.
 */
export function resolvePrice(provider: string, model: string, overrides: PriceOverrides): ModelPrice | null {
  const hasInput = overrides.input_cost_per_token !== undefined;
  const hasOutput = overrides.output_cost_per_token !== undefined;
  const table = hasInput && hasOutput ? null : lookupTablePrice(provider, model);
  if (!(hasInput && hasOutput) && !table) return null;
  const input = hasInput ? dollarsToPico(overrides.input_cost_per_token!) : table!.inputPerToken;
  const output = hasOutput ? dollarsToPico(overrides.output_cost_per_token!) : table!.outputPerToken;
  return {
    inputPerToken: input,
    outputPerToken: output,
    cacheReadPerToken:
      overrides.cache_read_input_token_cost !== undefined
        ? dollarsToPico(overrides.cache_read_input_token_cost)
        : (table?.cacheReadPerToken ?? input),
    cacheWritePerToken:
      overrides.cache_creation_input_token_cost !== undefined
        ? dollarsToPico(overrides.cache_creation_input_token_cost)
        : (table?.cacheWritePerToken ?? input),
    cacheWrite1hPerToken: overrides.cache_creation_input_token_cost_above_1hr !== undefined ? dollarsToPico(overrides.cache_creation_input_token_cost_above_1hr) : input * 2n,
    source: table && !(hasInput && hasOutput) ? 'genai-prices' : 'config',
  };
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from the provider's cache (subset of promptTokens). */
  cachedPromptTokens?: number;
  /** Prompt tokens written to the provider's cache (subset of promptTokens; Anthropic). */
  cacheWriteTokens?: number;
  /** Of the cache writes, those kept for an hour (subset of cacheWriteTokens; priced higher). */
  cacheWrite1hTokens?: number;
}

/** Cost of one request in pico-USD. Cached and cache-write tokens are priced at their own rates. */
export function costOf(price: ModelPrice, usage: TokenUsage): Pico {
  const cached = BigInt(Math.max(0, usage.cachedPromptTokens ?? 0));
  const cacheWrite = BigInt(Math.max(0, usage.cacheWriteTokens ?? 0));
  const cacheWrite1h = BigInt(Math.min(Math.max(0, usage.cacheWrite1hTokens ?? 0), Number(cacheWrite)));
  const plainPrompt = BigInt(Math.max(0, usage.promptTokens - Number(cached) - Number(cacheWrite)));
  return (
    plainPrompt * price.inputPerToken +
    cached * price.cacheReadPerToken +
    (cacheWrite - cacheWrite1h) * price.cacheWritePerToken +
    cacheWrite1h * (price.cacheWrite1hPerToken ?? price.inputPerToken * 2n) +
    BigInt(Math.max(0, usage.completionTokens)) * price.outputPerToken
  );
}
