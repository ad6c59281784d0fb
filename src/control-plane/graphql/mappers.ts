/** @module Service records → GraphQL objects (dollars as Float at this edge). */
import type { BudgetRecord } from '../../governance/records';
import { picoToDollars } from '../../shared/money';
import type { CustomerView } from '../../services/customers';
import type { SpendLogRow } from '../../services/spend';
import { budgetJson, modelPricesJson } from '../rest/wire';
import { Budget, Customer, SpendLog } from './types';

export function toBudget(record: BudgetRecord): Budget {
  return Object.assign(new Budget(), {
    id: record.budgetId,
    maxBudget: record.maxBudget === null ? null : picoToDollars(record.maxBudget),
    softBudget: record.softBudget === null ? null : picoToDollars(record.softBudget),
    rpmLimit: record.rpmLimit,
    tpmLimit: record.tpmLimit,
    maxParallelRequests: record.maxParallelRequests,
    budgetDuration: record.duration?.text ?? null,
    resetAt: record.resetAt,
    modelMaxBudget: budgetJson(record).model_max_budget,
    priceMultiplier: record.priceMultiplier ? Number(record.priceMultiplier.text) : null,
    modelPrices: modelPricesJson(record),
    prepaid: record.prepaid,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  });
}

export function toCustomer(view: CustomerView): Customer {
  const { customer } = view;
  return Object.assign(new Customer(), {
    id: customer.userId,
    alias: customer.alias,
    spend: picoToDollars(view.spend),
    blocked: customer.blocked,
    budgetId: customer.budgetId,
    budget: view.budget ? toBudget(view.budget) : null,
    allowedModelRegion: customer.allowedModelRegion,
    defaultModel: customer.defaultModel,
    status: view.status,
    stripeCustomerId: view.stripeCustomerId,
    prepaid: customer.prepaid || view.budget?.prepaid === true,
    createdAt: customer.createdAt,
  });
}

export function toSpendLog(row: SpendLogRow): SpendLog {
  return Object.assign(new SpendLog(), {
    requestId: row.requestId,
    customerId: row.customerId,
    keyAlias: row.keyAlias,
    model: row.model,
    provider: row.provider,
    endpoint: row.endpoint,
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    cachedPromptTokens: row.cachedPromptTokens,
    cost: picoToDollars(row.costPico),
    charge: picoToDollars(row.chargePico),
    costSource: row.costSource,
    status: row.status,
    createdAt: row.createdAt,
  });
}
