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
    createdAt: p.datetime().onCreate(() => new Date()).fieldName('created_at'),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()).fieldName('updated_at'),
  },
});
export type Customer = InferEntity<typeof CustomerEntity>;

export const LedgerEntryEntity = defineEntity({
  name: 'LedgerEntry',
  tableName: 'spend_ledger',
  indexes: [{ properties: ['customerId', 'createdAt'] }, { properties: ['createdAt'] }],
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
    costSource: p.string().length(16).fieldName('cost_source'),
    status: p.string().length(16).fieldName('status'),
    periodStart: p.datetime().fieldName('period_start'),
    createdAt: p.datetime().fieldName('created_at'),
  },
});
export type LedgerEntry = InferEntity<typeof LedgerEntryEntity>;

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
    createdAt: p.datetime().onCreate(() => new Date()).fieldName('created_at'),
    revokedAt: p.datetime().nullable().fieldName('revoked_at'),
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

export const ALL_ENTITIES = [BudgetEntity, CustomerEntity, LedgerEntryEntity, SpendCounterEntity, ApiKeyEntity, BudgetAlertEntity, WebhookEventEntity, WebhookDeliveryEntity];
