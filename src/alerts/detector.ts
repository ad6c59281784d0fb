/**
 * @module Budget alert detection, inside the ledger's batch transaction. The spend counters
 * were just incremented (and are row-locked) by that transaction, so the counter value is
 * the customer's spend after the batch across every process sharing the database; walking
 * the batch's records back from it gives each request's spend before and after. Alerts are
 * inserted with `on conflict do nothing` on (customer, type, threshold, period): a level is
 * fired by exactly one request, also across processes and journal replays after kill -9.
 * Detection reads the budget in force from the database, not from this process's memory,
 * so it is right during start-up recovery too. Alerts are published after the commit.
 */
import type { Knex } from '@mikro-orm/postgresql';
import type { BudgetEventBus } from '../ledger/events';
import type { BudgetEvent, SpendRecord } from '../ledger/types';
import type { Logger } from '../observability/logger';
import type { Pico } from '../shared/money';
import { eventIdFor } from '../webhooks/payloads';
import { crossings, type Threshold } from './thresholds';

/** The overall (all models) counter scope, as the resolver names it. */
const OVERALL_SCOPE = '';

export interface CustomerBudget {
  budgetId: string | null;
  maxBudgetPico: Pico | null;
  softBudgetPico: Pico | null;
}

export interface DetectedAlert {
  event: BudgetEvent;
  /** 'soft', the threshold's key (e.g. '0.85') or '1': part of the once-per-period key. */
  thresholdKey: string;
  /** The request that crossed the level. */
  record: SpendRecord;
}

export interface BatchAlerts {
  /** The budget in force for each customer of the batch (spend_tracked carries its max_budget). */
  budgets: Map<string, CustomerBudget>;
  /** Alerts new for their period, fired by this batch. */
  alerts: DetectedAlert[];
}

interface StateRow {
  k: number;
  budget_id: string | null;
  max_budget: string | null;
  soft_budget: string | null;
  spend: string | null;
}

const NO_BUDGET: CustomerBudget = { budgetId: null, maxBudgetPico: null, softBudgetPico: null };

export class BudgetAlertDetector {
  constructor(
    private readonly thresholds: readonly Threshold[],
    /** litellm_settings.max_end_user_budget_id: applies to customers without their own budget. */
    private readonly defaultBudgetId: string | null,
    private readonly bus: BudgetEventBus,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async detect(transaction: Knex.Transaction, inserted: SpendRecord[]): Promise<BatchAlerts> {
    const budgets = new Map<string, CustomerBudget>();
    // One key per (customer, period) of the batch, with the batch's records in settle order.
    const keys: { customerId: string; periodStartMs: number; records: SpendRecord[]; total: Pico }[] = [];
    const keyIndex = new Map<string, number>();
    for (const record of inserted) {
      if (!record.customerId) continue;
      const counter = record.counters.find((c) => c.scope === OVERALL_SCOPE);
      if (!counter) continue;
      const id = `${record.customerId}\u0000${counter.periodStartMs}`;
      let index = keyIndex.get(id);
      if (index === undefined) {
        index = keys.push({ customerId: record.customerId, periodStartMs: counter.periodStartMs, records: [], total: 0n }) - 1;
        keyIndex.set(id, index);
      }
      keys[index]!.records.push(record);
      keys[index]!.total += record.chargePico;
    }
    if (!keys.length) return { budgets, alerts: [] };

    const input = keys.map((key, k) => ({ k, customer_id: key.customerId, period_start: new Date(key.periodStartMs).toISOString() }));
    const result = await transaction.raw(
      `select x.k, b.budget_id, b.max_budget_pico::text as max_budget, b.soft_budget_pico::text as soft_budget, sc.spend_pico::text as spend
       from jsonb_to_recordset(?::jsonb) as x(k int, customer_id text, period_start timestamptz)
       left join customers c on c.user_id = x.customer_id
       left join budgets b on b.budget_id = coalesce(c.budget_id, ?::text)
       left join spend_counters sc on sc.customer_id = x.customer_id and sc.scope = '' and sc.period_start = x.period_start`,
      [JSON.stringify(input), this.defaultBudgetId],
    );

    const candidates: DetectedAlert[] = [];
    const atMs = this.now().getTime();
    for (const row of result.rows as StateRow[]) {
      const key = keys[row.k]!;
      const budget: CustomerBudget = row.budget_id
        ? { budgetId: row.budget_id, maxBudgetPico: row.max_budget === null ? null : BigInt(row.max_budget), softBudgetPico: row.soft_budget === null ? null : BigInt(row.soft_budget) }
        : NO_BUDGET;
      budgets.set(key.customerId, budget);
      if (row.spend === null || (budget.maxBudgetPico === null && budget.softBudgetPico === null)) continue;
      let spend = BigInt(row.spend) - key.total;
      const periodStart = new Date(key.periodStartMs).toISOString();
      for (const record of key.records) {
        const before = spend;
        spend += record.chargePico;
        for (const crossing of crossings(before, spend, budget, this.thresholds)) {
          candidates.push({
            record,
            thresholdKey: crossing.thresholdKey,
            event: {
              eventId: eventIdFor(crossing.type, key.customerId, crossing.thresholdKey, periodStart),
              type: crossing.type,
              customerId: key.customerId,
              budgetId: budget.budgetId,
              threshold: crossing.threshold,
              spendPico: spend,
              maxBudgetPico: budget.maxBudgetPico,
              softBudgetPico: budget.softBudgetPico,
              periodStartMs: key.periodStartMs,
              requestId: record.requestId,
              atMs,
            },
          });
        }
      }
    }
    if (!candidates.length) return { budgets, alerts: [] };

    return { budgets, alerts: await recordNewAlerts(transaction, candidates) };
  }

  /** After the commit: one log line and one bus event per alert. */
  publish(alerts: DetectedAlert[]): void {
    for (const { event } of alerts) {
      this.logger.info(
        { event: event.type, eventId: event.eventId, customerId: event.customerId, threshold: event.threshold, periodStart: new Date(event.periodStartMs).toISOString() },
        'customer budget alert',
      );
      this.bus.publish(event);
    }
  }
}

/**
 * Records the candidate alerts in `budget_alerts` in one statement and returns those that
 * were new: its once-per-period key makes an alert already fired (by this batch's retry, or
 * another process) a no-op. Budget and credit alerts alike.
 */
export async function recordNewAlerts(transaction: Knex.Transaction, candidates: DetectedAlert[]): Promise<DetectedAlert[]> {
  if (!candidates.length) return [];
  const rows = candidates.map(({ event, thresholdKey }, seq) => ({
    seq,
    event_id: event.eventId,
    customer_id: event.customerId,
    type: event.type,
    threshold_key: thresholdKey,
    period_start: new Date(event.periodStartMs).toISOString(),
    budget_id: event.budgetId,
    spend_pico: event.spendPico.toString(),
    max_budget_pico: event.maxBudgetPico?.toString() ?? null,
    soft_budget_pico: event.softBudgetPico?.toString() ?? null,
    request_id: event.requestId,
    created_at: new Date(event.atMs).toISOString(),
  }));
  const inserted = await transaction.raw(
    `insert into budget_alerts (event_id, customer_id, type, threshold_key, period_start, budget_id, spend_pico, max_budget_pico, soft_budget_pico, request_id, created_at)
     select event_id, customer_id, type, threshold_key, period_start, budget_id, spend_pico, max_budget_pico, soft_budget_pico, request_id, created_at
     from jsonb_to_recordset(?::jsonb) as x(seq int, event_id text, customer_id text, type text, threshold_key text, period_start timestamptz,
       budget_id text, spend_pico bigint, max_budget_pico bigint, soft_budget_pico bigint, request_id text, created_at timestamptz)
     order by seq
     on conflict do nothing
     returning event_id`,
    [JSON.stringify(rows)],
  );
  const fired = new Set((inserted.rows as { event_id: string }[]).map((row) => row.event_id));
  return candidates.filter(({ event }) => fired.has(event.eventId));
}
