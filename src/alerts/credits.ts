/**
 * @module Credit alerts (`credits_low`, `credits_exhausted`), inside the ledger's batch
 * transaction like budget alerts: the credits counter was just incremented (and row-locked)
 * by that transaction, so it is what the customer consumed across every process sharing the
 * database. An alert is inserted into budget_alerts with `on conflict do nothing` on
 * (customer, type, threshold, period), the period being the grant period (the latest grant's
 * creation): it fires once, and again only after a new grant.
 */
import type { Knex } from '@mikro-orm/postgresql';
import { creditLimit, CREDITS_SCOPE, grantPeriodOf } from '../governance/credits';
import type { SpendRecord } from '../ledger/types';
import { picoToDecimalString } from '../shared/money';
import { loadCreditStates } from '../store/credit-store';
import { eventIdFor } from '../webhooks/payloads';
import { recordNewAlerts, type DetectedAlert } from './detector';

export async function detectCreditAlerts(transaction: Knex.Transaction, inserted: SpendRecord[], lowThreshold: number, now: Date): Promise<DetectedAlert[]> {
  const lastRecord = new Map<string, SpendRecord>();
  for (const record of inserted) {
    if (record.customerId && record.counters.some((counter) => counter.scope === CREDITS_SCOPE)) lastRecord.set(record.customerId, record);
  }
  if (!lastRecord.size) return [];
  const ids = [...lastRecord.keys()];
  const states = await loadCreditStates(transaction, ids, now);
  const spends = await transaction.raw(
    `select customer_id, spend_pico::text as spend from spend_counters where customer_id = any(?::text[]) and scope = ? and period_start = ?`,
    [ids, CREDITS_SCOPE, new Date(0).toISOString()],
  );
  const consumedOf = new Map((spends.rows as { customer_id: string; spend: string }[]).map((row) => [row.customer_id, BigInt(row.spend)]));
  const candidates: DetectedAlert[] = [];
  const atMs = now.getTime();
  // The threshold as an exact fraction: parts per million of what was granted.
  const lowPpm = BigInt(Math.round(lowThreshold * 1_000_000));
  for (const [customerId, record] of lastRecord) {
    const state = states.get(customerId);
    const period = state ? grantPeriodOf(state.grants) : null;
    if (!state || !period) continue;
    const granted = creditLimit(state, atMs);
    const consumed = consumedOf.get(customerId) ?? 0n;
    const remaining = granted - consumed;
    const periodStart = period.toISOString();
    const fire = (type: 'credits_low' | 'credits_exhausted', threshold: number) => {
      const thresholdKey = String(threshold);
      candidates.push({
        record,
        thresholdKey,
        event: {
          eventId: eventIdFor(type, customerId, thresholdKey, periodStart),
          type,
          customerId,
          budgetId: null,
          threshold,
          spendPico: consumed,
          maxBudgetPico: granted,
          softBudgetPico: null,
          periodStartMs: period.getTime(),
          requestId: record.requestId,
          atMs,
        },
      });
    };
    if (remaining * 1_000_000n <= granted * lowPpm) fire('credits_low', lowThreshold);
    if (remaining <= 0n) fire('credits_exhausted', 0);
  }
  return recordNewAlerts(transaction, candidates);
}

/** For log lines: a credit alert's balance. */
export function describeCredits(granted: bigint, consumed: bigint): string {
  return `$${picoToDecimalString(granted - consumed)} of $${picoToDecimalString(granted)}`;
}
