/**
 * @module Hourly spend rollups per customer × model (UTC hours of `created_at`), maintained in
 * the ledger writer's transaction from exactly the rows it inserted, so a retried batch or a
 * replayed journal (whose rows conflict and are not inserted again) never counts twice, and
 * the rollup of any hour equals the sum of its ledger rows. Reports read these instead of
 * the raw ledger. A request without a customer rolls up under customer ''. The same sums per
 * hour × model alone (`spend_rollups_by_model`, a few rows an hour) serve reports over all
 * customers by day or model without reading a row per customer.
 */
import type { Knex } from '@mikro-orm/postgresql';
import type { SpendRecord } from './types';

const HOUR_MS = 3_600_000;

export function hourStartMs(atMs: number): number {
  return Math.floor(atMs / HOUR_MS) * HOUR_MS;
}

interface RollupIncrement {
  hour: string;
  customer_id: string;
  model: string;
  spend: bigint;
  /** What the customers were charged (their tier's prices), beside the provider cost in `spend`. */
  charge: bigint;
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
      increment = { hour, customer_id: customer, model: record.model, spend: 0n, charge: 0n, requests: 0, prompt: 0, completion: 0, cached: 0, cache_write: 0 };
      increments.set(id, increment);
    }
    increment.spend += record.costPico;
    increment.charge += record.chargePico ?? record.costPico;
    increment.requests += 1;
    increment.prompt += record.promptTokens;
    increment.completion += record.completionTokens;
    increment.cached += record.cachedPromptTokens;
    increment.cache_write += record.cacheWriteTokens;
  }
  if (!increments.size) return;
  await upsert(trx, 'spend_rollups', ['hour', 'customer_id', 'model'], increments);
  const byModel = new Map<string, RollupIncrement>();
  for (const increment of increments.values()) {
    const id = `${increment.hour}\u0000${increment.model}`;
    const total = byModel.get(id);
    if (!total) {
      byModel.set(id, { ...increment, customer_id: '' });
      continue;
    }
    total.spend += increment.spend;
    total.charge += increment.charge;
    total.requests += increment.requests;
    total.prompt += increment.prompt;
    total.completion += increment.completion;
    total.cached += increment.cached;
    total.cache_write += increment.cache_write;
  }
  await upsert(trx, 'spend_rollups_by_model', ['hour', 'model'], byModel);
}

async function upsert(trx: Knex.Transaction, table: 'spend_rollups' | 'spend_rollups_by_model', key: string[], increments: Map<string, RollupIncrement>): Promise<void> {
  // Sorted, so concurrent writers lock rollup rows in the same order (no deadlock).
  const rows = [...increments.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, i]) => ({ ...i, spend: i.spend.toString(), charge: i.charge.toString() }));
  const columns = key.join(', ');
  await trx.raw(
    `insert into ${table} (${columns}, spend_pico, charge_pico, requests, prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens)
     select ${columns}, spend, charge, requests, prompt, completion, cached, cache_write
     from jsonb_to_recordset(?::jsonb) as x(hour timestamptz, customer_id text, model text, spend bigint, charge bigint, requests bigint, prompt bigint,
       completion bigint, cached bigint, cache_write bigint)
     on conflict (${columns}) do update set
       spend_pico = ${table}.spend_pico + excluded.spend_pico,
       charge_pico = ${table}.charge_pico + excluded.charge_pico,
       requests = ${table}.requests + excluded.requests,
       prompt_tokens = ${table}.prompt_tokens + excluded.prompt_tokens,
       completion_tokens = ${table}.completion_tokens + excluded.completion_tokens,
       cached_prompt_tokens = ${table}.cached_prompt_tokens + excluded.cached_prompt_tokens,
       cache_write_tokens = ${table}.cache_write_tokens + excluded.cache_write_tokens`,
    [JSON.stringify(rows)],
  );
}
