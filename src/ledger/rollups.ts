/**
 * @module Hourly spend rollups per customer × model (UTC hours of `created_at`), maintained in
 * the ledger writer's transaction from exactly the rows it inserted, so a retried batch or a
 * replayed journal (whose rows conflict and are not inserted again) never counts twice, and
 * the rollup of any hour equals the sum of its ledger rows. Reports read these instead of
 * the raw ledger. A request without a customer rolls up under customer ''.
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
      increment = { hour, customer_id: customer, model: record.model, spend: 0n, requests: 0, prompt: 0, completion: 0, cached: 0, cache_write: 0 };
      increments.set(id, increment);
    }
    increment.spend += record.costPico;
    increment.requests += 1;
    increment.prompt += record.promptTokens;
    increment.completion += record.completionTokens;
    increment.cached += record.cachedPromptTokens;
    increment.cache_write += record.cacheWriteTokens;
  }
  if (!increments.size) return;
  // Sorted, so concurrent writers lock rollup rows in the same order (no deadlock).
  const rows = [...increments.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, i]) => ({ ...i, spend: i.spend.toString() }));
  await trx.raw(
    `insert into spend_rollups (hour, customer_id, model, spend_pico, requests, prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens)
     select hour, customer_id, model, spend, requests, prompt, completion, cached, cache_write
     from jsonb_to_recordset(?::jsonb) as x(hour timestamptz, customer_id text, model text, spend bigint, requests bigint, prompt bigint,
       completion bigint, cached bigint, cache_write bigint)
     on conflict (hour, customer_id, model) do update set
       spend_pico = spend_rollups.spend_pico + excluded.spend_pico,
       requests = spend_rollups.requests + excluded.requests,
       prompt_tokens = spend_rollups.prompt_tokens + excluded.prompt_tokens,
       completion_tokens = spend_rollups.completion_tokens + excluded.completion_tokens,
       cached_prompt_tokens = spend_rollups.cached_prompt_tokens + excluded.cached_prompt_tokens,
       cache_write_tokens = spend_rollups.cache_write_tokens + excluded.cache_write_tokens`,
    [JSON.stringify(rows)],
  );
}
