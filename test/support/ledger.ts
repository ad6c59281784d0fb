/**
 * Reads a customer's ledger rows straight from the gateway's database (exact pico amounts),
 * waiting for rows that settle after the client already left (disconnects settle on `close`).
 */
import type { RunningGateway } from '../../src/server/gateway';

export interface LedgerRow {
  request_id: string;
  prompt_tokens: number;
  completion_tokens: number;
  cached_prompt_tokens: number;
  cache_write_tokens: number;
  cost: bigint;
  cost_source: string;
  status: string;
  provider: string;
  endpoint: string;
}

export async function ledgerRows(gateway: RunningGateway, customerId: string): Promise<LedgerRow[]> {
  await gateway.ledger.flush();
  const knex = gateway.database.orm.em.getConnection().getKnex();
  const result = await knex.raw(
    `select request_id, prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens, cost_pico::text as cost, cost_source, status, provider, endpoint
     from spend_ledger where customer_id = ? order by created_at`,
    [customerId],
  );
  return (result.rows as (Omit<LedgerRow, 'cost'> & { cost: string })[]).map((row) => ({ ...row, cost: BigInt(row.cost) }));
}

/** Polls until `count` rows exist for the customer (settlement after a disconnect is asynchronous). */
export async function waitForLedgerRows(gateway: RunningGateway, customerId: string, count = 1, timeoutMs = 15_000): Promise<LedgerRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await ledgerRows(gateway, customerId);
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls a condition (for counters on mock upstreams); returns its last value. */
export async function eventually<T>(read: () => T, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
