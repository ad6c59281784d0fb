/**
 * @module The budget fields a request may carry (on /budget/*, inline on /customer/*, or as
 * GraphQL input), parsed once into typed values. `undefined` = not sent, `null` = clear.
 */
import type { Pico } from '../shared/money';
import type { BudgetDuration } from '../governance/periods';
import type { ModelBudgetRecord } from '../governance/records';
import type { ModelPrice } from '../pricing/prices';
import type { PriceMultiplier } from '../pricing/customer-price';
import { parseAmount, parseDate, parseDurationField, parseLimit, parseModelMaxBudget, parseModelPrices, parseOptionalBoolean, parsePriceMultiplier } from './validation';

export interface BudgetFields {
  maxBudget?: Pico | null;
  softBudget?: Pico | null;
  rpmLimit?: number | null;
  tpmLimit?: number | null;
  maxParallelRequests?: number | null;
  budgetDuration?: BudgetDuration | null;
  budgetResetAt?: Date | null;
  modelMaxBudget?: Record<string, ModelBudgetRecord> | null;
  priceMultiplier?: PriceMultiplier | null;
  modelPrices?: Record<string, ModelPrice> | null;
  /** Customers on the budget are served only from prepaid credits. Not a field of a customer's inline budget. */
  prepaid?: boolean;
}

/** Field names on the wire: LiteLLM's snake_case for REST, camelCase for GraphQL. */
export const SNAKE_NAMES = {
  maxBudget: 'max_budget',
  softBudget: 'soft_budget',
  rpmLimit: 'rpm_limit',
  tpmLimit: 'tpm_limit',
  maxParallelRequests: 'max_parallel_requests',
  budgetDuration: 'budget_duration',
  budgetResetAt: 'budget_reset_at',
  modelMaxBudget: 'model_max_budget',
  priceMultiplier: 'price_multiplier',
  modelPrices: 'model_prices',
  prepaid: 'prepaid',
} as const;

export const CAMEL_NAMES = {
  maxBudget: 'maxBudget',
  softBudget: 'softBudget',
  rpmLimit: 'rpmLimit',
  tpmLimit: 'tpmLimit',
  maxParallelRequests: 'maxParallelRequests',
  budgetDuration: 'budgetDuration',
  budgetResetAt: 'resetAt',
  modelMaxBudget: 'modelMaxBudget',
  priceMultiplier: 'priceMultiplier',
  modelPrices: 'modelPrices',
  prepaid: 'prepaid',
} as const;

export type FieldNames = { [K in keyof BudgetFields]-?: string };

export function parseBudgetFields(raw: Record<string, unknown>, names: FieldNames = SNAKE_NAMES): BudgetFields {
  const fields: BudgetFields = {
    maxBudget: parseAmount(names.maxBudget, raw[names.maxBudget]),
    softBudget: parseAmount(names.softBudget, raw[names.softBudget]),
    rpmLimit: parseLimit(names.rpmLimit, raw[names.rpmLimit]),
    tpmLimit: parseLimit(names.tpmLimit, raw[names.tpmLimit]),
    maxParallelRequests: parseLimit(names.maxParallelRequests, raw[names.maxParallelRequests]),
    budgetDuration: parseDurationField(names.budgetDuration, raw[names.budgetDuration]),
    budgetResetAt: parseDate(names.budgetResetAt, raw[names.budgetResetAt]),
    modelMaxBudget: parseModelMaxBudget(names.modelMaxBudget, raw[names.modelMaxBudget]),
    priceMultiplier: parsePriceMultiplier(names.priceMultiplier, raw[names.priceMultiplier]),
    modelPrices: parseModelPrices(names.modelPrices, raw[names.modelPrices]),
    prepaid: parseOptionalBoolean(names.prepaid, raw[names.prepaid]),
  };
  for (const key of Object.keys(fields) as (keyof BudgetFields)[]) if (fields[key] === undefined) delete fields[key];
  return fields;
}

export function hasBudgetFields(fields: BudgetFields): boolean {
  return Object.values(fields).some((value) => value !== undefined);
}
