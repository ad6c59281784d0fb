/**
 * @module MikroORM entities (defineEntity, no reflection: STACK.md §P2). Money columns are
 * bigint pico-USD, never int or float. The ledger is the source of truth for spend; the
 * spend counters are its per-period rollup, written in the same transaction.
 */
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const BudgetEntity = defineEntity({
  name: 'Budget',
  tableName: 'budgets',
  properties: {
    budgetId: p.string().primary().length(256).fieldName('budget_id'),
    maxBudgetPico: p.bigint('bigint').nullable().fieldName('max_budget_pico'),
    softBudgetPico: p.bigint('bigint').nullable().fieldName('soft_budget_pico'),
    rpmLimit: p.bigint('number').nullable().fieldName('rpm_limit'),
    tpmLimit: p.bigint('number').nullable().fieldName('tpm_limit'),
    maxParallelRequests: p.integer().nullable().fieldName('max_parallel_requests'),
    budgetDuration: p.string().length(32).nullable().fieldName('budget_duration'),
    budgetResetAt: p.datetime().nullable().fieldName('budget_reset_at'),
    modelMaxBudget: p.json<Record<string, { max_budget: string; budget_duration: string | null }>>().nullable().fieldName('model_max_budget'),
    /** The customer's price: a decimal multiplier on cost ("1.25"), and/or its own per-model prices. */
    priceMultiplier: p.string().length(32).nullable().fieldName('price_multiplier'),
    modelPrices: p.json<Record<string, Record<string, string>>>().nullable().fieldName('model_prices'),
    /** Customers on this budget are served only from prepaid credits. */
    prepaid: p.boolean().default(false).fieldName('prepaid'),
    createdBy: p.string().length(256).nullable().fieldName('created_by'),
    updatedBy: p.string().length(256).nullable().fieldName('updated_by'),
    createdAt: p.datetime().onCreate(() => new Date()).fieldName('created_at'),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()).fieldName('updated_at'),
  },
});
export type Budget = InferEntity<typeof BudgetEntity>;

export const CustomerEntity = defineEntity({
  name: 'Customer',
  tableName: 'customers',
  properties: {
    userId: p.string().primary().length(256).fieldName('user_id'),
    alias: p.string().length(256).nullable().fieldName('alias'),
    blocked: p.boolean().default(false).fieldName('blocked'),
    budgetId: p.string().length(256).nullable().index().fieldName('budget_id'),
    allowedModelRegion: p.string().length(16).nullable().fieldName('allowed_model_region'),
    defaultModel: p.string().length(256).nullable().fieldName('default_model'),
    /** Served only from prepaid credits (also when its budget says so). */
    prepaid: p.boolean().default(false).fieldName('prepaid'),
    createdAt: p.datetime().onCreate(() => new Date()).fieldName('created_at'),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()).fieldName('updated_at'),
  },
});
export type Customer = InferEntity<typeof CustomerEntity>;

/**
 * Partitioned by day of `created_at` (migration 20261201092317, src/ledger/partitions.ts):
 * MikroORM cannot express partitions, so that part of the schema lives in the migration.
 */
export const LedgerEntryEntity = defineEntity({
  name: 'LedgerEntry',
  tableName: 'spend_ledger',
  indexes: [{ properties: ['customerId', 'createdAt', 'requestId'] }, { properties: ['requestId'] }],
  properties: {
    requestId: p.string().primary().length(64).fieldName('request_id'),
    customerId: p.string().length(256).nullable().fieldName('customer_id'),
    /** Written before key ids replaced it; emptied by Migration20261201100000. */
    apiKeyHash: p.string().length(128).nullable().fieldName('api_key_hash'),
    apiKeyId: p.string().length(64).nullable().fieldName('api_key_id'),
    keyAlias: p.string().length(256).nullable().fieldName('key_alias'),
    model: p.string().length(256).fieldName('model'),
    deploymentId: p.string().length(300).fieldName('deployment_id'),
    provider: p.string().length(64).fieldName('provider'),
    endpoint: p.string().length(64).fieldName('endpoint'),
    promptTokens: p.integer().fieldName('prompt_tokens'),
    completionTokens: p.integer().fieldName('completion_tokens'),
    cachedPromptTokens: p.integer().default(0).fieldName('cached_prompt_tokens'),
    cacheWriteTokens: p.integer().default(0).fieldName('cache_write_tokens'),
    costPico: p.bigint('bigint').fieldName('cost_pico'),
    /** What the customer is charged (its tier's price); null on rows written before charges existed (= cost). */
    chargePico: p.bigint('bigint').nullable().fieldName('charge_pico'),
    /** The part of the charge paid from the customer's prepaid credits (all of it for a prepaid customer, else 0). */
    creditPico: p.bigint('bigint').default(0).fieldName('credit_pico'),
    costSource: p.string().length(16).fieldName('cost_source'),
    status: p.string().length(16).fieldName('status'),
    periodStart: p.datetime().fieldName('period_start'),
    createdAt: p.datetime().primary().fieldName('created_at'),
  },
});
export type LedgerEntry = InferEntity<typeof LedgerEntryEntity>;

/** Spend per UTC hour × customer ('' = none) × model, kept equal to the ledger (src/ledger/rollups.ts). */
export const SpendRollupEntity = defineEntity({
  name: 'SpendRollup',
  tableName: 'spend_rollups',
  indexes: [{ properties: ['customerId', 'hour'] }],
  properties: {
    hour: p.datetime().primary().fieldName('hour'),
    customerId: p.string().primary().length(256).fieldName('customer_id'),
    model: p.string().primary().length(256).fieldName('model'),
    spendPico: p.bigint('bigint').fieldName('spend_pico'),
    requests: p.bigint('number').fieldName('requests'),
    promptTokens: p.bigint('number').fieldName('prompt_tokens'),
    completionTokens: p.bigint('number').fieldName('completion_tokens'),
    cachedPromptTokens: p.bigint('number').fieldName('cached_prompt_tokens'),
    cacheWriteTokens: p.bigint('number').fieldName('cache_write_tokens'),
  },
});
export type SpendRollup = InferEntity<typeof SpendRollupEntity>;

/** The same sums per UTC day × customer × model (src/ledger/rollups.ts), for reports over months. */
export const DailySpendRollupEntity = defineEntity({
  name: 'DailySpendRollup',
  tableName: 'spend_rollups_daily',
  indexes: [{ properties: ['customerId', 'day'] }],
  properties: {
    day: p.datetime().primary().fieldName('day'),
    customerId: p.string().primary().length(256).fieldName('customer_id'),
    model: p.string().primary().length(256).fieldName('model'),
    spendPico: p.bigint('bigint').fieldName('spend_pico'),
    chargePico: p.bigint('bigint').fieldName('charge_pico'),
    requests: p.bigint('number').fieldName('requests'),
    promptTokens: p.bigint('number').fieldName('prompt_tokens'),
    completionTokens: p.bigint('number').fieldName('completion_tokens'),
    cachedPromptTokens: p.bigint('number').fieldName('cached_prompt_tokens'),
    cacheWriteTokens: p.bigint('number').fieldName('cache_write_tokens'),
  },
});

/** The same sums per UTC hour × model alone, for reports over all customers. */
export const ModelSpendRollupEntity = defineEntity({
  name: 'ModelSpendRollup',
  tableName: 'spend_rollups_by_model',
  properties: {
    hour: p.datetime().primary().fieldName('hour'),
    model: p.string().primary().length(256).fieldName('model'),
    spendPico: p.bigint('bigint').fieldName('spend_pico'),
    requests: p.bigint('number').fieldName('requests'),
    promptTokens: p.bigint('number').fieldName('prompt_tokens'),
    completionTokens: p.bigint('number').fieldName('completion_tokens'),
    cachedPromptTokens: p.bigint('number').fieldName('cached_prompt_tokens'),
    cacheWriteTokens: p.bigint('number').fieldName('cache_write_tokens'),
  },
});

/** Per customer, per scope ('' = all models, 'model:<name>' = model_max_budget), per period. */
export const SpendCounterEntity = defineEntity({
  name: 'SpendCounter',
  tableName: 'spend_counters',
  properties: {
    customerId: p.string().primary().length(256).fieldName('customer_id'),
    scope: p.string().primary().length(300).fieldName('scope'),
    periodStart: p.datetime().primary().fieldName('period_start'),
    spendPico: p.bigint('bigint').fieldName('spend_pico'),
    requests: p.bigint('number').fieldName('requests'),
    promptTokens: p.bigint('number').fieldName('prompt_tokens'),
    completionTokens: p.bigint('number').fieldName('completion_tokens'),
    updatedAt: p.datetime().fieldName('updated_at'),
  },
});
export type SpendCounter = InferEntity<typeof SpendCounterEntity>;

export const ApiKeyEntity = defineEntity({
  name: 'ApiKey',
  tableName: 'api_keys',
  properties: {
    id: p.string().primary().length(64).fieldName('id'),
    keyHash: p.string().length(128).unique().fieldName('key_hash'),
    keyPrefix: p.string().length(16).fieldName('key_prefix'),
    alias: p.string().length(256).nullable().fieldName('key_alias'),
    scope: p.string().length(16).fieldName('scope'),
    /** A key bound to one customer (its requests are that customer's, always), with optional limits of its own. */
    customerId: p.string().length(256).nullable().fieldName('customer_id'),
    rpmLimit: p.integer().nullable().fieldName('rpm_limit'),
    maxBudgetPico: p.bigint('bigint').nullable().fieldName('max_budget_pico'),
    createdAt: p.datetime().onCreate(() => new Date()).fieldName('created_at'),
    revokedAt: p.datetime().nullable().fieldName('revoked_at'),
    /** Written in batches (key-usage.ts), so it lags use by up to its flush interval. */
    lastUsedAt: p.datetime().nullable().fieldName('last_used_at'),
  },
});
export type ApiKey = InferEntity<typeof ApiKeyEntity>;

/**
 * Budget alerts fired (soft budget, thresholds, budget crossed). The unique key is the
 * "at most once per threshold per period" rule: every process inserts with on conflict do
 * nothing in its ledger transaction, so only one of them fires the alert.
 */
export const BudgetAlertEntity = defineEntity({
  name: 'BudgetAlert',
  tableName: 'budget_alerts',
  uniques: [{ properties: ['customerId', 'type', 'thresholdKey', 'periodStart'] }],
  properties: {
    eventId: p.string().primary().length(64).fieldName('event_id'),
    customerId: p.string().length(256).fieldName('customer_id'),
    type: p.string().length(32).fieldName('type'),
    /** 'soft', a fraction such as '0.85', or '1' for budget_crossed. */
    thresholdKey: p.string().length(32).fieldName('threshold_key'),
    periodStart: p.datetime().fieldName('period_start'),
    budgetId: p.string().length(256).nullable().fieldName('budget_id'),
    spendPico: p.bigint('bigint').fieldName('spend_pico'),
    maxBudgetPico: p.bigint('bigint').nullable().fieldName('max_budget_pico'),
    softBudgetPico: p.bigint('bigint').nullable().fieldName('soft_budget_pico'),
    requestId: p.string().length(64).fieldName('request_id'),
    createdAt: p.datetime().fieldName('created_at'),
  },
});
export type BudgetAlert = InferEntity<typeof BudgetAlertEntity>;

/** The webhook outbox: one row per event, written in the ledger transaction of its request. */
export const WebhookEventEntity = defineEntity({
  name: 'WebhookEvent',
  tableName: 'webhook_events',
  properties: {
    eventId: p.string().primary().length(64).fieldName('event_id'),
    eventType: p.string().length(32).fieldName('event_type'),
    customerId: p.string().length(256).nullable().fieldName('customer_id'),
    /** The exact JSON body sent (text, not jsonb: jsonb would reorder the seed's keys). */
    body: p.text().fieldName('body'),
    createdAt: p.datetime().fieldName('created_at'),
  },
});
export type WebhookEvent = InferEntity<typeof WebhookEventEntity>;

/** Delivery state of one event to one WEBHOOK_URL. */
export const WebhookDeliveryEntity = defineEntity({
  name: 'WebhookDelivery',
  tableName: 'webhook_deliveries',
  indexes: [{ properties: ['status', 'url', 'nextAttemptAt'] }, { properties: ['status', 'createdAt'] }],
  properties: {
    eventId: p.string().primary().length(64).fieldName('event_id'),
    url: p.string().primary().length(2048).fieldName('url'),
    /** pending | delivered | failed */
    status: p.string().length(16).fieldName('status'),
    attempts: p.integer().default(0).fieldName('attempts'),
    /** Due time while pending; also the lease of an attempt in flight (see outbox.ts). */
    nextAttemptAt: p.datetime().nullable().fieldName('next_attempt_at'),
    /** Retries stop here and the delivery becomes failed (retryable by hand). */
    giveUpAt: p.datetime().fieldName('give_up_at'),
    lastAttemptAt: p.datetime().nullable().fieldName('last_attempt_at'),
    lastStatusCode: p.integer().nullable().fieldName('last_status_code'),
    lastError: p.text().nullable().fieldName('last_error'),
    deliveredAt: p.datetime().nullable().fieldName('delivered_at'),
    createdAt: p.datetime().fieldName('created_at'),
  },
});
export type WebhookDelivery = InferEntity<typeof WebhookDeliveryEntity>;

/**
 * Requests the gateway refused at admission (budget, rate limit, blocked, counters down),
 * one row per customer × model × reason × minute with a count: bounded however hard a
 * refused client retries. Not spend: nothing here is charged. Kept for 30 days.
 */
export const RefusedRequestEntity = defineEntity({
  name: 'RefusedRequest',
  tableName: 'refused_requests',
  indexes: [{ properties: ['minute'] }, { properties: ['customerId', 'lastAt'] }],
  properties: {
    customerId: p.string().primary().length(256).fieldName('customer_id'),
    model: p.string().primary().length(256).fieldName('model'),
    /** The error code sent: budget_exceeded, rate_limit_exceeded, customer_blocked, service_unavailable. */
    reason: p.string().primary().length(32).fieldName('reason'),
    minute: p.datetime().primary().fieldName('minute'),
    status: p.integer().fieldName('status'),
    /** Which limit refused it: max_budget, model_max_budget, rpm, tpm, parallel; null when none. */
    limitType: p.string().length(32).nullable().fieldName('limit_type'),
    /** The limit's value as shown to an operator (dollars or a count). */
    limitValue: p.string().length(64).nullable().fieldName('limit_value'),
    budgetId: p.string().length(256).nullable().fieldName('budget_id'),
    /** The message of the last refusal in that minute, as the client got it. */
    message: p.text().fieldName('message'),
    count: p.integer().fieldName('count'),
    firstAt: p.datetime().fieldName('first_at'),
    lastAt: p.datetime().fieldName('last_at'),
  },
});
export type RefusedRequest = InferEntity<typeof RefusedRequestEntity>;

/** Who changed what on a customer, and when (written by services/customers.ts). */
export const CustomerAuditEntity = defineEntity({
  name: 'CustomerAudit',
  tableName: 'customer_audit',
  indexes: [{ properties: ['customerId', 'createdAt'] }],
  properties: {
    id: p.string().primary().length(64).fieldName('id'),
    customerId: p.string().length(256).fieldName('customer_id'),
    /** created, updated, blocked, unblocked, deleted */
    action: p.string().length(32).fieldName('action'),
    actor: p.string().length(256).fieldName('actor'),
    /** {field: [before, after]} for what changed. */
    changes: p.json<Record<string, [unknown, unknown]>>().fieldName('changes'),
    createdAt: p.datetime().fieldName('created_at'),
  },
});
export type CustomerAudit = InferEntity<typeof CustomerAuditEntity>;

export const ALL_ENTITIES = [BudgetEntity, CustomerEntity, LedgerEntryEntity, SpendRollupEntity, DailySpendRollupEntity, ModelSpendRollupEntity, SpendCounterEntity, ApiKeyEntity, BudgetAlertEntity, WebhookEventEntity, WebhookDeliveryEntity, RefusedRequestEntity, CustomerAuditEntity];
