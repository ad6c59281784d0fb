/** @module LiteLLM wire shapes for budgets, customers and spend logs (dollars as JSON numbers). */
import type { BudgetRecord } from '../../governance/records';
import { picoToDecimalString, picoToDollars, type Pico } from '../../shared/money';
import type { GrantRecord } from '../../governance/credits';
import type { CreditBalance, GrantView } from '../../services/credits';
import type { CustomerView } from '../../services/customers';
import type { SpendLogRow, SpendReportRow } from '../../services/spend';
import { modelPricesToDecimal } from '../../store/mappers';

const dollarsOrNull = (pico: Pico | null) => (pico === null ? null : picoToDollars(pico));

export function budgetJson(budget: BudgetRecord) {
  return {
    budget_id: budget.budgetId,
    max_budget: dollarsOrNull(budget.maxBudget),
    soft_budget: dollarsOrNull(budget.softBudget),
    max_parallel_requests: budget.maxParallelRequests,
    tpm_limit: budget.tpmLimit,
    rpm_limit: budget.rpmLimit,
    model_max_budget: budget.modelMaxBudget
      ? Object.fromEntries(
          Object.entries(budget.modelMaxBudget).map(([model, entry]) => [
            model,
            { max_budget: picoToDollars(entry.maxBudget), budget_duration: entry.duration?.text ?? null },
          ]),
        )
      : null,
    price_multiplier: budget.priceMultiplier ? Number(budget.priceMultiplier.text) : null,
    prepaid: budget.prepaid,
    model_prices: modelPricesJson(budget),
    budget_duration: budget.duration?.text ?? null,
    budget_reset_at: budget.resetAt?.toISOString() ?? null,
    created_at: budget.createdAt.toISOString(),
    created_by: budget.createdBy,
    updated_at: budget.updatedAt.toISOString(),
    updated_by: budget.updatedBy,
  };
}

/** A tier's own per-model prices, dollars per token as JSON numbers (LiteLLM's names). */
export function modelPricesJson(budget: BudgetRecord): Record<string, Record<string, number>> | null {
  if (!budget.modelPrices) return null;
  return Object.fromEntries(
    Object.entries(modelPricesToDecimal(budget.modelPrices)).map(([model, prices]) => [model, Object.fromEntries(Object.entries(prices).map(([name, value]) => [name, Number(value)]))]),
  );
}

/** The seed's /customer/info shape, key for key, plus `budget_id` (and `stripe_customer_id` once one is set). */
export function customerJson(view: CustomerView, credits: CreditBalance | null = null) {
  const { customer } = view;
  return {
    user_id: customer.userId,
    blocked: customer.blocked,
    alias: customer.alias,
    spend: picoToDollars(view.spend),
    allowed_model_region: customer.allowedModelRegion,
    default_model: customer.defaultModel,
    litellm_budget_table: view.budget ? budgetJson(view.budget) : null,
    budget_id: customer.budgetId,
    // Only when set, so a customer without billing ids keeps LiteLLM's exact shape.
    ...(view.stripeCustomerId === null ? {} : { stripe_customer_id: view.stripeCustomerId }),
    // Likewise only for a prepaid customer (itself, or through its budget).
    ...(view.customer.prepaid || view.budget?.prepaid ? { prepaid: true } : {}),
    ...(credits ? { credits: { granted: picoToDollars(credits.granted), consumed: picoToDollars(credits.consumed), balance: picoToDollars(credits.balance), prepaid: credits.prepaid } } : {}),
  };
}

export function spendLogJson(row: SpendLogRow) {
  return {
    request_id: row.requestId,
    end_user: row.customerId ?? '',
    api_key: row.apiKeyId, // the key's id, never its hash
    key_alias: row.keyAlias,
    model: row.model,
    custom_llm_provider: row.provider,
    call_type: row.endpoint,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
    total_tokens: row.promptTokens + row.completionTokens,
    cached_prompt_tokens: row.cachedPromptTokens,
    // `spend` is what the customer is charged (LiteLLM's field); `cost` what the provider bills.
    spend: picoToDollars(row.chargePico),
    cost: picoToDollars(row.costPico),
    charge: picoToDollars(row.chargePico),
    cost_source: row.costSource,
    status: row.status,
    startTime: row.createdAt.toISOString(),
  };
}

/** A report row: provider cost, customer charge and the margin between them, in dollars. */
export function spendReportJson(row: SpendReportRow) {
  return {
    key: row.key,
    cost: picoToDollars(row.costPico),
    charge: picoToDollars(row.chargePico),
    margin: picoToDollars(row.chargePico - row.costPico),
    spend: picoToDollars(row.chargePico),
    requests: row.requests,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
  };
}

/** A prepaid customer's balance and grants (dollars as JSON numbers; `*_exact` as exact decimal strings). */
export function creditsJson(balance: CreditBalance) {
  return {
    end_user_id: balance.customerId,
    prepaid: balance.prepaid,
    granted: picoToDollars(balance.granted),
    consumed: picoToDollars(balance.consumed),
    balance: picoToDollars(balance.balance),
    balance_exact: picoToDecimalString(balance.balance),
    consumed_exact: picoToDecimalString(balance.consumed),
    grants: balance.grants.map(grantJson),
  };
}

export function grantJson(grant: GrantRecord & Partial<Pick<GrantView, 'consumed' | 'remaining' | 'status'>>) {
  return {
    reference: grant.reference,
    amount: picoToDollars(grant.amount),
    kind: grant.kind,
    expires_at: grant.expiresAt?.toISOString() ?? null,
    voided_at: grant.voidedAt?.toISOString() ?? null,
    created_at: grant.createdAt.toISOString(),
    created_by: grant.createdBy,
    ...(grant.status === undefined ? {} : { status: grant.status, consumed: picoToDollars(grant.consumed!), remaining: picoToDollars(grant.remaining!) }),
  };
}
