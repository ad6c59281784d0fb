/**
 * @module Admin input validation shared by REST, GraphQL and the UI: amounts as JSON numbers
 * or numeric strings (LiteLLM clients send `"max_budget": "0"`), finite and >= 0; limits as
 * non-negative integers; durations that parse. Every failure names the field.
 */
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { GatewayError } from '../shared/errors';
import { dollarsToPico, MAX_PICO, picoToDecimalString, type Pico } from '../shared/money';
import { InvalidDurationError, parseDuration, type BudgetDuration } from '../governance/periods';
import type { ModelBudgetRecord } from '../governance/records';
import type { ModelPrice } from '../pricing/prices';
import { MAX_PRICE_MULTIPLIER, modelPriceFrom, priceMultiplierFrom, type PriceMultiplier } from '../pricing/customer-price';

export function invalid(field: string, message: string): GatewayError {
  return new GatewayError('bad_request', `Invalid value for ${field}: ${message}`, field);
}

const NUMERIC = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** A dollar amount: undefined when absent, null when explicitly cleared. */
export function parseAmount(field: string, value: unknown): Pico | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  let number: number;
  if (typeof value === 'number') number = value;
  else if (typeof value === 'string' && NUMERIC.test(value)) number = Number(value);
  else throw invalid(field, `expected a number or numeric string, got ${JSON.stringify(value)}`);
  if (!Number.isFinite(number)) throw invalid(field, `must be a finite number, got ${JSON.stringify(value)}`);
  if (number < 0) throw invalid(field, `must be >= 0, got ${JSON.stringify(value)}`);
  const pico = dollarsToPico(typeof value === 'string' ? value.trim() : value);
  if (pico > MAX_PICO) throw invalid(field, `must be at most ${picoToDecimalString(MAX_PICO)} USD, got ${JSON.stringify(value)}`);
  return pico;
}

/** A count limit (rpm, tpm, parallel): non-negative integer; numeric strings accepted. */
export function parseLimit(field: string, value: unknown): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  const number = typeof value === 'string' && NUMERIC.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isFinite(number)) throw invalid(field, `expected an integer, got ${JSON.stringify(value)}`);
  if (!Number.isInteger(number) || number < 0) throw invalid(field, `must be a non-negative integer, got ${JSON.stringify(value)}`);
  if (number > Number.MAX_SAFE_INTEGER) throw invalid(field, 'is too large');
  return number;
}

export function parseDurationField(field: string, value: unknown): BudgetDuration | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value !== 'string') throw invalid(field, `expected a duration string like "30d", got ${JSON.stringify(value)}`);
  try {
    return parseDuration(value);
  } catch (error) {
    if (error instanceof InvalidDurationError) throw invalid(field, error.message);
    throw error;
  }
}

export function parseOptionalString(field: string, value: unknown, maxLength = 256): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value !== 'string') throw invalid(field, `expected a string, got ${JSON.stringify(value)}`);
  if (value.length > maxLength) throw invalid(field, `must be at most ${maxLength} characters`);
  return value;
}

export function parseOptionalBoolean(field: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw invalid(field, `expected true or false, got ${JSON.stringify(value)}`);
}

/** Dates the store and the period arithmetic handle: 1970 to 9999. */
const EARLIEST_DATE_MS = 0;
const LATEST_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

export function parseDate(field: string, value: unknown): Date | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  const date = value instanceof Date ? value : typeof value === 'string' || typeof value === 'number' ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) throw invalid(field, `expected an ISO 8601 date-time, got ${JSON.stringify(value)}`);
  if (date.getTime() < EARLIEST_DATE_MS || date.getTime() > LATEST_DATE_MS) throw invalid(field, `must be between 1970 and 9999, got ${JSON.stringify(value)}`);
  return date;
}

/**
 * `model_max_budget`: `{model: {max_budget, budget_duration}}`; LiteLLM's alternative
 * `{budget_limit, time_period}` shape is accepted and normalised.
 */
export function parseModelMaxBudget(field: string, value: unknown): Record<string, ModelBudgetRecord> | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  let object = value;
  if (typeof value === 'string') {
    try {
      object = JSON.parse(value);
    } catch {
      throw invalid(field, 'expected an object {model: {max_budget, budget_duration}}');
    }
  }
  if (!object || typeof object !== 'object' || Array.isArray(object)) throw invalid(field, 'expected an object {model: {max_budget, budget_duration}}');
  const result: Record<string, ModelBudgetRecord> = {};
  for (const [model, entry] of Object.entries(object)) {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw invalid(`${field}.${model}`, 'expected {max_budget, budget_duration}');
    const e = entry as Record<string, unknown>;
    const max = parseAmount(`${field}.${model}.max_budget`, e.max_budget ?? e.budget_limit);
    if (max === undefined || max === null) throw invalid(`${field}.${model}.max_budget`, 'is required');
    result[model] = { maxBudget: max, duration: parseDurationField(`${field}.${model}.budget_duration`, e.budget_duration ?? e.time_period) ?? null };
  }
  return result;
}

/** `price_multiplier`: a decimal such as 1.25 (up to 12 decimals), from 0 to MAX_PRICE_MULTIPLIER. */
export function parsePriceMultiplier(field: string, value: unknown): PriceMultiplier | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : typeof value === 'string' ? value : null;
  const multiplier = text === null ? null : priceMultiplierFrom(text);
  if (!multiplier) throw invalid(field, `expected a decimal number such as 1.25 (at most 12 decimals), got ${JSON.stringify(value)}`);
  if (multiplier.numerator > BigInt(MAX_PRICE_MULTIPLIER) * multiplier.denominator) throw invalid(field, `must be at most ${MAX_PRICE_MULTIPLIER}, got ${JSON.stringify(value)}`);
  return multiplier;
}

const MODEL_PRICE_FIELDS = ['input_cost_per_token', 'output_cost_per_token', 'cache_read_input_token_cost', 'cache_creation_input_token_cost'] as const;

/**
 * `model_prices`: `{model: {input_cost_per_token, output_cost_per_token,
 * cache_read_input_token_cost?, cache_creation_input_token_cost?}}`, dollars per token.
 */
export function parseModelPrices(field: string, value: unknown): Record<string, ModelPrice> | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  const shape = 'expected an object {model: {input_cost_per_token, output_cost_per_token}}';
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(field, shape);
  const result: Record<string, ModelPrice> = {};
  for (const [model, entry] of Object.entries(value)) {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw invalid(`${field}.${model}`, 'expected {input_cost_per_token, output_cost_per_token}');
    const e = entry as Record<string, unknown>;
    const unknownField = Object.keys(e).find((key) => !(MODEL_PRICE_FIELDS as readonly string[]).includes(key));
    if (unknownField) throw invalid(`${field}.${model}.${unknownField}`, `is not a price field (use ${MODEL_PRICE_FIELDS.join(', ')})`);
    const prices: Record<string, string> = {};
    for (const name of MODEL_PRICE_FIELDS) {
      const amount = parseAmount(`${field}.${model}.${name}`, e[name]);
      if (amount === null || (amount === undefined && (name === 'input_cost_per_token' || name === 'output_cost_per_token'))) throw invalid(`${field}.${model}.${name}`, 'is required');
      if (amount !== undefined) prices[name] = picoToDecimalString(amount);
    }
    result[model] = modelPriceFrom(prices as never);
  }
  return result;
}

export function requireObject(value: unknown, what = 'request body'): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new GatewayError('bad_request', `The ${what} must be a JSON object.`, null);
  return value as Record<string, unknown>;
}

export function requireStringArray(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) throw invalid(field, 'expected an array of strings');
  return value as string[];
}

/**
 * Where the first NUL character (U+0000) in a request's strings or keys is, as a field path,
 * or null. PostgreSQL text and jsonb cannot store one, so such input is refused up front
 * with a 400 naming the field, instead of failing in the database.
 */
export function findNulCharacter(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (!value || typeof value !== 'object' || depth > 32) return null;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const found = findNulCharacter(value[index], `${path}[${index}]`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    if (key.includes('\u0000')) return at;
    const found = findNulCharacter(item, at, depth + 1);
    if (found) return found;
  }
  return null;
}

/** A write refused by a unique index: a concurrent create of the same id won. */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof UniqueConstraintViolationException || (error as { code?: string } | null)?.code === '23505';
}

/** Deepest nesting of objects and arrays accepted in a request (bodies, GraphQL variables). */
export const MAX_JSON_NESTING = 64;

/**
 * Whether parsed JSON nests objects and arrays deeper than `limit`. Iterative, so a
 * document nested thousands deep is measured without a deep stack (and then refused before
 * any recursive code, error messages included, touches it).
 */
export function nestedDeeperThan(value: unknown, limit = MAX_JSON_NESTING): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [item, depth] = stack.pop()!;
    if (!item || typeof item !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) if (child && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

export function nestingError(what: string): GatewayError {
  return new GatewayError('bad_request', `The ${what} nests objects or arrays more than ${MAX_JSON_NESTING} levels deep.`, null);
}

export function nulCharacterError(field: string): GatewayError {
  return invalid(field, 'must not contain a NUL character (\\u0000)');
}
