/**
 * @module One metered request as the ledger records it. The ledger is the single source of
 * spend events: counters, subscriptions and webhooks all follow from these records.
 */
export type CostSource = 'provider' | 'computed' | 'estimated';

/** The counter of a prepaid customer's credits consumed (period start 0: it never resets). */
export const CREDITS_SCOPE = 'credits';

export interface CounterIncrement {
  scope: string;
  periodStartMs: number;
}

export interface SpendRecord {
  requestId: string;
  customerId: string | null;
  /** The key's id (`master` for the master key): never a hash of it, which a weak key could be guessed from. */
  apiKeyId: string | null;
  keyAlias: string | null;
  model: string;
  deploymentId: string;
  provider: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  cacheWriteTokens: number;
  /** What the provider bills (its price table). */
  costPico: bigint;
  /**
   * What the customer is charged: its tier's price (`pricing/customer-price.ts`), the cost when
   * the tier sets none. Spend counters, budgets, alerts and webhooks count this.
   */
  chargePico: bigint;
  costSource: CostSource;
  status: 'success' | 'partial';
  /** Start of the customer's budget period this request was admitted in. */
  periodStartMs: number;
  /** The customer counters this request adds to (overall and per-model budgets). */
  counters: CounterIncrement[];
  createdAtMs: number;
  /**
   * The customer had a row in the store when the request was admitted, so committing the
   * record does not create it, and must not: a customer deleted while the request ran (or
   * before another process heard of it) is not brought back as a new one on the default
   * budget. Absent when the store could not be read at admission (and in older journals):
   * then the commit creates the customer, so a replay after a crash loses no customer.
   */
  customerOnRecord?: true;
}

/** What subscribers (GraphQL subscriptions, webhooks) receive after a request is metered. */
export interface SpendEvent {
  record: SpendRecord;
  /** The customer's settled spend in the current period after this request. */
  periodSpendPico: bigint;
  maxBudgetPico: bigint | null;
  softBudgetPico: bigint | null;
  budgetId: string | null;
}

/** A customer's budget alert, published once per threshold per budget period. */
export interface BudgetEvent {
  /** Stable id (also the webhook event id receivers dedupe on). */
  eventId: string;
  /** credits_*: a prepaid customer's balance; `spendPico` is what it consumed, `maxBudgetPico` what its grants make usable. */
  type: 'soft_budget_crossed' | 'threshold_crossed' | 'budget_crossed' | 'credits_low' | 'credits_exhausted';
  customerId: string;
  budgetId: string | null;
  /** Fraction of max_budget for threshold_crossed (e.g. 0.85); 1 for budget_crossed; null for soft budget. */
  threshold: number | null;
  spendPico: bigint;
  maxBudgetPico: bigint | null;
  softBudgetPico: bigint | null;
  periodStartMs: number;
  requestId: string;
  atMs: number;
}

/** The part of a request's charge paid from prepaid credits: all of it when it claimed credits. */
export function creditPicoOf(record: Pick<SpendRecord, 'counters' | 'chargePico'>): bigint {
  return record.counters.some((counter) => counter.scope === CREDITS_SCOPE) ? record.chargePico : 0n;
}
