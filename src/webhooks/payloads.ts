/**
 * @module Webhook bodies in LiteLLM's `WebhookEvent` shape. `spend_tracked` has exactly the
 * seed's fields; budget alerts have the same fields plus `soft_budget`, `threshold`,
 * `budget_id` and `period_start`. Dollars are JSON numbers (the nearest double of the exact
 * pico amount), as on LiteLLM's wire; `token` is the key's id (`master` for the master key), never the key or a hash of it.
 */
import { createHash } from 'node:crypto';
import type { BudgetEvent, SpendRecord } from '../ledger/types';
import { picoToDecimalString, picoToDollars, type Pico } from '../shared/money';

export type WebhookEventType = 'spend_tracked' | BudgetEvent['type'] | 'webhook_test';

export interface WebhookPayload {
  spend: number;
  max_budget: number | null;
  token: string | null;
  customer_id: string | null;
  user_id: null;
  team_id: null;
  user_email: null;
  key_alias: string | null;
  projected_exceeded_date: null;
  projected_spend: null;
  event: WebhookEventType;
  event_group: 'customer' | 'proxy';
  event_message: string;
  [extra: string]: unknown;
}

/** A stable event id from what makes the event unique, so every process derives the same id. */
export function eventIdFor(...parts: string[]): string {
  return `evt_${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32)}`;
}

export function spendTrackedEventId(requestId: string): string {
  return eventIdFor('spend_tracked', requestId);
}

const dollarsOrNull = (pico: Pico | null) => (pico === null ? null : picoToDollars(pico));

export function spendTrackedPayload(record: SpendRecord, maxBudgetPico: Pico | null): WebhookPayload {
  // The customer's charge: with a tier price it is what the customer owes, not the provider cost.
  const spend = picoToDollars(record.chargePico);
  return {
    spend,
    max_budget: dollarsOrNull(maxBudgetPico),
    token: record.apiKeyId,
    customer_id: record.customerId,
    user_id: null,
    team_id: null,
    user_email: null,
    key_alias: record.keyAlias,
    projected_exceeded_date: null,
    projected_spend: null,
    event: 'spend_tracked',
    event_group: 'customer',
    event_message: `Customer spend tracked. Customer=${record.customerId}, spend=${spend}`,
  };
}

function budgetMessage(event: BudgetEvent, spend: number): string {
  const customer = `Customer=${event.customerId}, spend=${spend}`;
  switch (event.type) {
    case 'soft_budget_crossed':
      return `Customer soft budget crossed. ${customer}, soft_budget=${dollarsOrNull(event.softBudgetPico)}`;
    case 'threshold_crossed':
      return `Customer budget threshold crossed: ${formatPercent(event.threshold!)} of max_budget. ${customer}, max_budget=${dollarsOrNull(event.maxBudgetPico)}`;
    case 'budget_crossed':
      return `Customer budget crossed. ${customer}, max_budget=${dollarsOrNull(event.maxBudgetPico)}`;
    case 'credits_low':
      return `Customer credits low: ${picoToDecimalString(creditsRemaining(event))} remaining of ${picoToDecimalString(event.maxBudgetPico ?? 0n)} granted (at most ${formatPercent(event.threshold!)} left). Customer=${event.customerId}`;
    case 'credits_exhausted':
      return `Customer credits exhausted: ${picoToDecimalString(creditsRemaining(event))} remaining of ${picoToDecimalString(event.maxBudgetPico ?? 0n)} granted; its requests are refused until credits are granted. Customer=${event.customerId}`;
  }
}

/** A credit alert's balance: what the grants make usable minus what was consumed (may be below zero by one request). */
function creditsRemaining(event: BudgetEvent): Pico {
  return (event.maxBudgetPico ?? 0n) - event.spendPico;
}

function formatPercent(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(12))}%`;
}

/** `spend` is the customer's period spend after the request that crossed (what the level is compared with). */
export function budgetAlertPayload(event: BudgetEvent, record: Pick<SpendRecord, 'apiKeyId' | 'keyAlias'>): WebhookPayload {
  const spend = picoToDollars(event.spendPico);
  return {
    spend,
    max_budget: dollarsOrNull(event.maxBudgetPico),
    soft_budget: dollarsOrNull(event.softBudgetPico),
    threshold: event.threshold,
    token: record.apiKeyId,
    customer_id: event.customerId,
    user_id: null,
    team_id: null,
    user_email: null,
    key_alias: record.keyAlias,
    projected_exceeded_date: null,
    projected_spend: null,
    event: event.type,
    event_group: 'customer',
    event_message: budgetMessage(event, spend),
    budget_id: event.budgetId,
    period_start: new Date(event.periodStartMs).toISOString(),
    // Credit alerts: period_start is the grant period's start (the latest grant), spend what was consumed.
    ...(event.type === 'credits_low' || event.type === 'credits_exhausted'
      ? { credits_granted: picoToDollars(event.maxBudgetPico ?? 0n), credits_remaining: picoToDollars(creditsRemaining(event)) }
      : {}),
  };
}

/** What `GET /health/services?service=webhook` sends. */
export function testPayload(): WebhookPayload {
  return {
    spend: 0,
    max_budget: null,
    token: null,
    customer_id: null,
    user_id: null,
    team_id: null,
    user_email: null,
    key_alias: null,
    projected_exceeded_date: null,
    projected_spend: null,
    event: 'webhook_test',
    event_group: 'proxy',
    event_message: 'Test event from Tollgate: webhook alerting is set up.',
  };
}
