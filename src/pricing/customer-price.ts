/**
 * @module What a customer is charged (price ≠ cost). A pricing tier (budget) may carry its own
 * per-model prices and/or a multiplier on the provider cost; without either, the charge is the
 * cost (LiteLLM semantics). Exact integers: the multiplier is kept as a decimal fraction and
 * applied to the request's whole cost in pico-USD, rounded half up, once per request.
 */
import { dollarsToPico, type Pico } from '../shared/money';
import { costOf, type ModelPrice, type TokenUsage } from './prices';

/** A decimal multiplier such as 1.25, exactly: `numerator / denominator` (a power of ten). */
export interface PriceMultiplier {
  /** As the admin wrote it, normalised (e.g. "1.25"). */
  text: string;
  numerator: bigint;
  denominator: bigint;
}

/** The part of a budget that sets the customer's prices. */
export interface CustomerPricing {
  priceMultiplier: PriceMultiplier | null;
  /** Per model name (as clients request it): the customer's price per token, in pico-USD. */
  modelPrices: Record<string, ModelPrice> | null;
}

/** The largest multiplier accepted: beyond it a typo (1250 for 1.25) is far likelier than intent. */
export const MAX_PRICE_MULTIPLIER = 1000;
const MULTIPLIER = /^(\d+)(?:\.(\d{1,12}))?$/;

/** Parses "1.25" (or 1.25) into an exact fraction; null when the text is not a plain decimal. */
export function priceMultiplierFrom(value: string): PriceMultiplier | null {
  const match = MULTIPLIER.exec(value.trim());
  if (!match) return null;
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  const whole = match[1]!.replace(/^0+(?=\d)/, '');
  const denominator = 10n ** BigInt(fraction.length);
  return { text: fraction ? `${whole}.${fraction}` : whole, numerator: BigInt(whole + fraction), denominator };
}

/** `amount × numerator / denominator`, rounded half up (amounts are never negative). */
function multiply(amount: Pico, multiplier: PriceMultiplier): Pico {
  return (amount * multiplier.numerator * 2n + multiplier.denominator) / (multiplier.denominator * 2n);
}

/**
 * The customer's charge for one request. The tier's own price for the model wins; else the
 * multiplier applies to the provider cost; else the charge is the cost.
 */
export function chargeOf(pricing: CustomerPricing | null, model: string, usage: TokenUsage, costPico: Pico): Pico {
  const ownPrice = pricing?.modelPrices?.[model];
  if (ownPrice) return costOf(ownPrice, usage);
  if (pricing?.priceMultiplier) return multiply(costPico, pricing.priceMultiplier);
  return costPico;
}

/** LiteLLM's per-token price names (dollars per token), as `model_prices` entries carry them. */
export interface ModelPriceInput {
  input_cost_per_token: number | string;
  output_cost_per_token: number | string;
  cache_read_input_token_cost?: number | string;
  cache_creation_input_token_cost?: number | string;
}

/** A stored `model_prices` entry → per-token pico prices; cache prices default to the input price. */
export function modelPriceFrom(entry: ModelPriceInput): ModelPrice {
  const input = dollarsToPico(entry.input_cost_per_token);
  return {
    inputPerToken: input,
    outputPerToken: dollarsToPico(entry.output_cost_per_token),
    cacheReadPerToken: entry.cache_read_input_token_cost !== undefined ? dollarsToPico(entry.cache_read_input_token_cost) : input,
    cacheWritePerToken: entry.cache_creation_input_token_cost !== undefined ? dollarsToPico(entry.cache_creation_input_token_cost) : input,
    source: 'config',
  };
}
