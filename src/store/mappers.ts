/** @module Entity rows ↔ the in-memory records governance decides on. */
import { parseDuration } from '../governance/periods';
import type { BudgetRecord, CustomerRecord, ModelBudgetRecord } from '../governance/records';
import { modelPriceFrom, priceMultiplierFrom, type ModelPriceInput } from '../pricing/customer-price';
import type { ModelPrice } from '../pricing/prices';
import { dollarsToPico, picoToDecimalString } from '../shared/money';
import type { Budget, Customer } from './entities';

type StoredModelBudgets = Record<string, { max_budget: string; budget_duration: string | null }>;
type StoredModelPrices = Record<string, ModelPriceInput>;

/** Per-token prices as LiteLLM names them, in exact decimal dollars (what the store and the APIs show). */
export function modelPricesToDecimal(prices: Record<string, ModelPrice>): Record<string, Record<string, string>> {
  return Object.fromEntries(
    Object.entries(prices).map(([model, price]) => [
      model,
      {
        input_cost_per_token: picoToDecimalString(price.inputPerToken),
        output_cost_per_token: picoToDecimalString(price.outputPerToken),
        cache_read_input_token_cost: picoToDecimalString(price.cacheReadPerToken),
        cache_creation_input_token_cost: picoToDecimalString(price.cacheWritePerToken),
      },
    ]),
  );
}

export function budgetFromEntity(row: Budget): BudgetRecord {
  const models = row.modelMaxBudget as StoredModelBudgets | null | undefined;
  return {
    budgetId: row.budgetId,
    maxBudget: row.maxBudgetPico ?? null,
    softBudget: row.softBudgetPico ?? null,
    rpmLimit: row.rpmLimit ?? null,
    tpmLimit: row.tpmLimit ?? null,
    maxParallelRequests: row.maxParallelRequests ?? null,
    duration: parseDuration(row.budgetDuration ?? null),
    resetAt: row.budgetResetAt ?? null,
    modelMaxBudget: models
      ? Object.fromEntries(
          Object.entries(models).map(([model, entry]): [string, ModelBudgetRecord] => [
            model,
            { maxBudget: dollarsToPico(entry.max_budget), duration: parseDuration(entry.budget_duration) },
          ]),
        )
      : null,
    priceMultiplier: row.priceMultiplier ? priceMultiplierFrom(row.priceMultiplier) : null,
    modelPrices: row.modelPrices
      ? Object.fromEntries(Object.entries(row.modelPrices as unknown as StoredModelPrices).map(([model, entry]) => [model, modelPriceFrom(entry)]))
      : null,
    prepaid: row.prepaid ?? false,
    createdBy: row.createdBy ?? null,
    updatedBy: row.updatedBy ?? null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function budgetToEntityData(record: BudgetRecord): Budget {
  return {
    budgetId: record.budgetId,
    maxBudgetPico: record.maxBudget,
    softBudgetPico: record.softBudget,
    rpmLimit: record.rpmLimit,
    tpmLimit: record.tpmLimit,
    maxParallelRequests: record.maxParallelRequests,
    budgetDuration: record.duration?.text ?? null,
    budgetResetAt: record.resetAt,
    modelMaxBudget: record.modelMaxBudget
      ? Object.fromEntries(
          Object.entries(record.modelMaxBudget).map(([model, entry]) => [
            model,
            { max_budget: picoToDecimalString(entry.maxBudget), budget_duration: entry.duration?.text ?? null },
          ]),
        )
      : null,
    priceMultiplier: record.priceMultiplier?.text ?? null,
    modelPrices: record.modelPrices ? modelPricesToDecimal(record.modelPrices) : null,
    prepaid: record.prepaid,
    createdBy: record.createdBy,
    updatedBy: record.updatedBy,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  } as Budget;
}

export function customerFromEntity(row: Customer): CustomerRecord {
  return {
    userId: row.userId,
    alias: row.alias ?? null,
    blocked: row.blocked,
    budgetId: row.budgetId ?? null,
    allowedModelRegion: row.allowedModelRegion ?? null,
    defaultModel: row.defaultModel ?? null,
    prepaid: row.prepaid ?? false,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function customerToEntityData(record: CustomerRecord): Customer {
  return { ...record } as Customer;
}
