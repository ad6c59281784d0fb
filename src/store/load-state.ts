/**
 * @module Start-up: loads budgets, customers and keys into the registry, and each customer's
 * latest period spend into the spend book, so the hot path never waits on the database.
 * `reloadChanged` refreshes single entities another process changed.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { KeyRecord, Registry } from '../governance/registry';
import type { SpendBook } from '../shared-state/types';
import { ApiKeyEntity, BudgetEntity, CustomerEntity, type ApiKey } from './entities';
import { budgetFromEntity, customerFromEntity } from './mappers';

export async function loadState(orm: MikroORM, registry: Registry, spendBook: SpendBook): Promise<void> {
  const em = orm.em.fork();
  for (const row of await em.find(BudgetEntity, {})) registry.budgets.set(row.budgetId, budgetFromEntity(row));
  for (const row of await em.find(CustomerEntity, {})) registry.customers.set(row.userId, customerFromEntity(row));
  for (const row of await em.find(ApiKeyEntity, {})) registry.keys.set(row.keyHash, keyFromEntity(row));
  const knex = em.getConnection().getKnex();
  const result = await knex.raw(
    `select distinct on (customer_id, scope) customer_id, scope, period_start, spend_pico
     from spend_counters order by customer_id, scope, period_start desc`,
  );
  for (const row of result.rows as { customer_id: string; scope: string; period_start: string; spend_pico: string }[]) {
    // With shared counters another proxy may already be counting this customer: its live
    // value (settled + in flight) is ahead of the store, so only missing counters are seeded.
    await spendBook.seed({ customerId: row.customer_id, scope: row.scope, periodStartMs: new Date(row.period_start).getTime() }, BigInt(row.spend_pico), { onlyIfMissing: true });
  }
}

function keyFromEntity(row: ApiKey): KeyRecord {
  return { id: row.id, keyHash: row.keyHash, alias: row.alias ?? null, scope: row.scope as 'admin' | 'inference', revoked: row.revokedAt != null };
}

/** What another process changed: a budget id, a customer id, or a key hash. */
export interface EntityChange {
  kind: 'budget' | 'customer' | 'key';
  id: string;
}

/**
 * Reloads changed entities from the store into the registry. Existing records are updated in
 * place (decisions in flight and every customer on a tier share one budget object); rows
 * that are gone are dropped.
 */
export async function reloadChanged(orm: MikroORM, registry: Registry, changes: EntityChange[]): Promise<void> {
  const em = orm.em.fork();
  const ids = (kind: EntityChange['kind']) => [...new Set(changes.filter((c) => c.kind === kind).map((c) => c.id))];
  const budgetIds = ids('budget');
  const customerIds = ids('customer');
  const keyHashes = ids('key');
  if (budgetIds.length) {
    const rows = new Map((await em.find(BudgetEntity, { budgetId: { $in: budgetIds } })).map((row) => [row.budgetId, budgetFromEntity(row)]));
    for (const id of budgetIds) {
      const fresh = rows.get(id);
      const current = registry.budgets.get(id);
      if (!fresh) registry.budgets.delete(id);
      else if (current) Object.assign(current, fresh);
      else registry.budgets.set(id, fresh);
    }
  }
  if (customerIds.length) {
    const rows = new Map((await em.find(CustomerEntity, { userId: { $in: customerIds } })).map((row) => [row.userId, customerFromEntity(row)]));
    for (const id of customerIds) {
      const fresh = rows.get(id);
      const current = registry.customers.get(id);
      if (!fresh) registry.customers.delete(id);
      else if (current) Object.assign(current, fresh);
      else registry.customers.set(id, fresh);
    }
  }
  if (keyHashes.length) {
    const rows = new Map((await em.find(ApiKeyEntity, { keyHash: { $in: keyHashes } })).map((row) => [row.keyHash, keyFromEntity(row)]));
    for (const hash of keyHashes) {
      const fresh = rows.get(hash);
      if (fresh) registry.keys.set(hash, fresh);
      else registry.keys.delete(hash);
    }
  }
}
