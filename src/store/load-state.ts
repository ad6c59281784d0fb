/**
 * @module Start-up: loads budgets and keys into the registry (few), and attaches the store as
 * the source of the customer cache: customers (many) are read one by one when first served,
 * with their latest period spend (customer-store.ts), so start-up time and memory do not grow
 * with the number of customers. `reloadChanged` refreshes single entities another process
 * changed; `reloadAll` and `seedCounters` catch up after the Redis connection was lost.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { CustomerRecord } from '../governance/records';
import type { KeyRecord, Registry } from '../governance/registry';
import type { SpendRecord } from '../ledger/types';
import type { Logger } from '../observability/logger';
import { SETTLEMENT_MARKER_TTL_MS } from '../shared-state/redis';
import type { SpendBook } from '../shared-state/types';
import { currentCounters, readCustomers, StoredCustomers, type CurrentPeriodStart, type StoredCounter } from './customer-store';
import { loadCreditStates } from './credit-store';
import { ApiKeyEntity, BudgetEntity, type ApiKey } from './entities';
import { budgetFromEntity } from './mappers';

export async function loadState(orm: MikroORM, registry: Registry, spendBook: SpendBook, currentStart: CurrentPeriodStart | null = null): Promise<void> {
  const em = orm.em.fork();
  for (const row of await em.find(BudgetEntity, {})) registry.budgets.set(row.budgetId, budgetFromEntity(row));
  for (const row of await em.find(ApiKeyEntity, {})) registry.keys.set(row.keyHash, keyFromEntity(row));
  registry.customers.attach(new StoredCustomers(orm, spendBook, currentStart));
  registry.credits.attach((ids, now) => loadCreditStates(orm.em.getConnection().getKnex(), ids, now));
}

/**
 * Seeds the given customers' current period spend from the store's counters (those a process
 * has cached, or an admin list shows; the others are seeded when next read). Only counters the
 * book lacks are seeded: with shared counters another proxy may already be counting that
 * customer, and its live value (settled + in flight) is ahead of the store. So this is safe to
 * run again whenever Redis may have lost its data (a reconnect).
 */
export async function seedCounters(orm: MikroORM, spendBook: SpendBook, customers: CustomerRecord[], currentStart: CurrentPeriodStart | null = null): Promise<void> {
  if (!customers.length) return;
  const knex = orm.em.fork().getConnection().getKnex();
  const result = await knex.raw(
    `select customer_id, scope, period_start, spend_pico::text as spend_pico
     from (select customer_id, scope, period_start, spend_pico, row_number() over (partition by customer_id, scope order by period_start desc) as recent
           from spend_counters where customer_id = any(?::text[])) latest
     where recent <= 4`,
    [customers.map((customer) => customer.userId)],
  );
  const byCustomer = new Map<string, StoredCounter[]>();
  for (const row of result.rows as (StoredCounter & { customer_id: string })[]) byCustomer.set(row.customer_id, [...(byCustomer.get(row.customer_id) ?? []), row]);
  const seeds = customers.flatMap((customer) => currentCounters(customer, byCustomer.get(customer.userId) ?? [], currentStart).map((counter) => ({ customerId: customer.userId, ...counter })));
  // In batches: one round trip per counter, many in flight at once, bounded memory.
  for (let start = 0; start < seeds.length; start += 1000) {
    await Promise.all(
      seeds.slice(start, start + 1000).map((seed) => spendBook.seed({ customerId: seed.customerId, scope: seed.scope, periodStartMs: seed.periodStartMs }, seed.spend, { onlyIfMissing: true })),
    );
  }
}

/**
 * Counts in the spend book the requests a crashed process journaled, in case it died before
 * counting them there (between the journal write and the Redis update, or with updates still
 * queued while Redis was away). Settlement markers make each count once; counters the book
 * lacks are left to `seedCounters`, whose store totals include them. Only records younger
 * than the markers are replayed: an older one may have been counted and forgotten.
 */
export async function replayRecovered(records: SpendRecord[], spendBook: SpendBook, now: number, logger: Logger): Promise<void> {
  const horizon = now - SETTLEMENT_MARKER_TTL_MS + 60_000;
  const replayable = records.filter((record) => record.customerId !== null && record.createdAtMs > horizon);
  if (replayable.length < records.length) {
    logger.warn({ skipped: records.length - replayable.length }, 'recovered requests too old to count in the shared counters exactly once; left as they are');
  }
  for (const record of replayable) {
    for (const counter of record.counters) {
      const key = { customerId: record.customerId!, scope: counter.scope, periodStartMs: counter.periodStartMs };
      await spendBook.commit(key, 0n, record.chargePico, record.requestId, { onlyIfPresent: true });
    }
  }
}

function keyFromEntity(row: ApiKey): KeyRecord {
  const customerId = row.customerId ?? null;
  const limits = customerId && (row.rpmLimit != null || row.maxBudgetPico != null) ? { rpmLimit: row.rpmLimit ?? null, maxBudget: row.maxBudgetPico ?? null } : null;
  return { id: row.id, keyHash: row.keyHash, alias: row.alias ?? null, scope: row.scope as 'admin' | 'inference', revoked: row.revokedAt != null, customerId, limits };
}

/** What another process changed: a budget id, a customer id (its record, or its credit grants: 'credits'), or a key hash. */
export interface EntityChange {
  kind: 'budget' | 'customer' | 'key' | 'credits';
  id: string;
}

/**
 * Reloads every budget and key, and the cached customers (after notices may have been
 * missed: the subscriber lost its Redis connection). Records are updated in place; budgets,
 * keys and cached customers gone from the store are dropped.
 */
export async function reloadAll(orm: MikroORM, registry: Registry): Promise<void> {
  const em = orm.em.fork();
  const budgets = await em.find(BudgetEntity, {});
  const keys = await em.find(ApiKeyEntity, {});
  const changes: EntityChange[] = [
    ...[...registry.budgets.keys()].map((id) => ({ kind: 'budget' as const, id })),
    ...[...registry.keys.keys()].map((id) => ({ kind: 'key' as const, id })),
  ];
  const present = { budget: new Set(budgets.map((row) => row.budgetId)), key: new Set(keys.map((row) => row.keyHash)) };
  for (const change of changes) {
    if (change.kind === 'budget' && !present.budget.has(change.id)) registry.budgets.delete(change.id);
    if (change.kind === 'key' && !present.key.has(change.id)) registry.keys.delete(change.id);
  }
  for (const row of budgets) {
    const fresh = budgetFromEntity(row);
    const current = registry.budgets.get(row.budgetId);
    if (current) Object.assign(current, fresh);
    else registry.budgets.set(row.budgetId, fresh);
  }
  await reloadCustomers(orm, registry, registry.customers.cachedIds());
  await registry.credits.reload(registry.customers.cachedIds(), new Date());
  for (const row of keys) registry.keys.set(row.keyHash, keyFromEntity(row));
  registry.keysChanged();
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
  await reloadCustomers(orm, registry, customerIds);
  const creditIds = ids('credits');
  if (creditIds.length) await registry.credits.reload(creditIds, new Date());
  if (keyHashes.length) {
    const rows = new Map((await em.find(ApiKeyEntity, { keyHash: { $in: keyHashes } })).map((row) => [row.keyHash, keyFromEntity(row)]));
    for (const hash of keyHashes) {
      const fresh = rows.get(hash);
      if (fresh) registry.keys.set(hash, fresh);
      else registry.keys.delete(hash);
    }
    registry.keysChanged();
  }
}

/**
 * Reads again the customers this process holds (or is reading) among `ids`, a thousand per
 * query (the cache holds up to customer_cache_size); the others are read when next served.
 */
async function reloadCustomers(orm: MikroORM, registry: Registry, ids: string[]): Promise<void> {
  const tracked = [...new Set(ids)].filter((id) => registry.customers.tracks(id));
  for (let start = 0; start < tracked.length; start += 1000) {
    const chunk = tracked.slice(start, start + 1000);
    const rows = await readCustomers(orm, chunk);
    for (const id of chunk) registry.customers.replace(id, rows.get(id) ?? null);
  }
}
