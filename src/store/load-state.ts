/**
 * @module Start-up: loads budgets, customers and keys into the registry, and each customer's
 * latest period spend into the spend book, so the hot path never waits on the database.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Registry } from '../governance/registry';
import type { SpendBook } from '../shared-state/types';
import { ApiKeyEntity, BudgetEntity, CustomerEntity } from './entities';
import { budgetFromEntity, customerFromEntity } from './mappers';

export async function loadState(orm: MikroORM, registry: Registry, spendBook: SpendBook): Promise<void> {
  const em = orm.em.fork();
  for (const row of await em.find(BudgetEntity, {})) registry.budgets.set(row.budgetId, budgetFromEntity(row));
  for (const row of await em.find(CustomerEntity, {})) registry.customers.set(row.userId, customerFromEntity(row));
  for (const row of await em.find(ApiKeyEntity, {})) {
    registry.keys.set(row.keyHash, { id: row.id, keyHash: row.keyHash, alias: row.alias ?? null, scope: row.scope as 'admin' | 'inference', revoked: row.revokedAt != null });
  }
  const knex = em.getConnection().getKnex();
  const result = await knex.raw(
    `select distinct on (customer_id, scope) customer_id, scope, period_start, spend_pico
     from spend_counters order by customer_id, scope, period_start desc`,
  );
  for (const row of result.rows as { customer_id: string; scope: string; period_start: string; spend_pico: string }[]) {
    spendBook.seed({ customerId: row.customer_id, scope: row.scope, periodStartMs: new Date(row.period_start).getTime() }, BigInt(row.spend_pico));
  }
}
