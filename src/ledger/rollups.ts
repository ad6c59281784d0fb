/**
 * @module Hourly spend rollups per customer × model (UTC hours of `created_at`), maintained in
 * the ledger writer's transaction from exactly the rows it inserted, so a retried batch or a
 * replayed journal (whose rows conflict and are not inserted again) never counts twice, and
 * the rollup of any hour equals the sum of its ledger rows. Reports read these instead of
 * the raw ledger. A request without a customer rolls up under customer ''. The same sums per
 * hour × model alone (`spend_rollups_by_model`, a few rows an hour) serve reports over all
 * customers by day or model without reading a row per customer. `spend_rollups_daily` holds the
 * customer × model sums per UTC day (the same increments, summed by day in the same statement
 * batch), for reports over months: 24× fewer rows than the hourly grain.
 */
import type { Knex } from '@mikro-orm/postgresql';
import { creditPicoOf, type SpendRecord } from './types';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export function hourStartMs(atMs: number): number {
  return Math.floor(atMs / HOUR_MS) * HOUR_MS;
}

type RollupTable = 'spend_rollups' | 'spend_rollups_by_model' | 'spend_rollups_daily';

interface RollupIncrement {
  hour: string;
  customer_id: string;
  model: string;
  spend: bigint;
  /** What the customers were charged (their tier's prices), beside the provider cost in `spend`. */
  charge: bigint;
  /** The part of the charge paid from prepaid credits (the ledger's credit_pico). */
  credit: bigint;
  requests: number;
  prompt: number;
  completion: number;
  cached: number;
  cache_write: number;
}

/** Adds the inserted records to their hours' rollups (one statement for the whole batch). */
export async function addToRollups(trx: Knex.Transaction, inserted: SpendRecord[]): Promise<void> {
  const increments = new Map<string, RollupIncrement>();
  for (const record of inserted) {
    const hour = new Date(hourStartMs(record.createdAtMs)).toISOString();
    const customer = record.customerId ?? '';
    const id = `${hour}\u0000${customer}\u0000${record.model}`;
    let increment = increments.get(id);
    if (!increment) {
      increment = { hour, customer_id: customer, model: record.model, spend: 0n, charge: 0n, credit: 0n, requests: 0, prompt: 0, completion: 0, cached: 0, cache_write: 0 };
      increments.set(id, increment);
    }
    increment.spend += record.costPico;
    increment.charge += record.chargePico ?? record.costPico;
    increment.credit += creditPicoOf(record);
    increment.requests += 1;
    increment.prompt += record.promptTokens;
    increment.completion += record.completionTokens;
    increment.cached += record.cachedPromptTokens;
    increment.cache_write += record.cacheWriteTokens;
  }
  if (!increments.size) return;
  await upsert(trx, 'spend_rollups', ['hour', 'customer_id', 'model'], increments);
  // Per UTC day × customer × model: the hour's start, floored to its day.
  const daily = regroup(increments, (i) => `${i.hour.slice(0, 10)}\u0000${i.customer_id}\u0000${i.model}`, (i) => ({ hour: new Date(Math.floor(Date.parse(i.hour) / DAY_MS) * DAY_MS).toISOString() }));
  await upsert(trx, 'spend_rollups_daily', ['day', 'customer_id', 'model'], daily, 'hour');
  await upsert(trx, 'spend_rollups_by_model', ['hour', 'model'], regroup(increments, (i) => `${i.hour}\u0000${i.model}`, () => ({ customer_id: '' })));
}

/** The increments summed by a coarser key (`override` sets the coarser key's fields). */
function regroup(increments: Map<string, RollupIncrement>, keyOf: (increment: RollupIncrement) => string, override: (increment: RollupIncrement) => Partial<RollupIncrement>): Map<string, RollupIncrement> {
  const grouped = new Map<string, RollupIncrement>();
  for (const increment of increments.values()) {
    const id = keyOf(increment);
    const total = grouped.get(id);
    if (!total) {
      grouped.set(id, { ...increment, ...override(increment) });
      continue;
    }
    total.spend += increment.spend;
    total.charge += increment.charge;
    total.credit += increment.credit;
    total.requests += increment.requests;
    total.prompt += increment.prompt;
    total.completion += increment.completion;
    total.cached += increment.cached;
    total.cache_write += increment.cache_write;
  }
  return grouped;
}

/** `timeField` is the increment's field holding the table's first key column (its hour or day). */
async function upsert(trx: Knex.Transaction, table: RollupTable, key: string[], increments: Map<string, RollupIncrement>, timeField = key[0]!): Promise<void> {
  // Sorted, so concurrent writers lock rollup rows in the same order (no deadlock).
  const rows = [...increments.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, i]) => ({ ...i, spend: i.spend.toString(), charge: i.charge.toString(), credit: i.credit.toString() }));
  const columns = key.join(', ');
  const selected = key.map((column, index) => (index === 0 ? `${timeField} as ${column}` : column)).join(', ');
  await trx.raw(
    `insert into ${table} (${columns}, spend_pico, charge_pico, credit_pico, requests, prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens)
     select ${selected}, spend, charge, credit, requests, prompt, completion, cached, cache_write
     from jsonb_to_recordset(?::jsonb) as x(hour timestamptz, customer_id text, model text, spend bigint, charge bigint, credit bigint, requests bigint, prompt bigint,
       completion bigint, cached bigint, cache_write bigint)
     on conflict (${columns}) do update set
       spend_pico = ${table}.spend_pico + excluded.spend_pico,
       charge_pico = ${table}.charge_pico + excluded.charge_pico,
       credit_pico = ${table}.credit_pico + excluded.credit_pico,
       requests = ${table}.requests + excluded.requests,
       prompt_tokens = ${table}.prompt_tokens + excluded.prompt_tokens,
       completion_tokens = ${table}.completion_tokens + excluded.completion_tokens,
       cached_prompt_tokens = ${table}.cached_prompt_tokens + excluded.cached_prompt_tokens,
       cache_write_tokens = ${table}.cache_write_tokens + excluded.cache_write_tokens`,
    [JSON.stringify(rows)],
  );
}
