/**
 * @module Spend queries: current-period spend (from memory, read-your-writes), ledger rows,
 * period history and reports (from the store, after flushing what is queued), and
 * recomputing a customer's period spend when its budget or period changes.
 */
import { modelScope, OVERALL_SCOPE } from '../governance/resolver';
import type { CustomerRecord } from '../governance/records';
import type { Pico } from '../shared/money';
import { readCustomers } from '../store/customer-store';
import { GatewayError } from '../shared/errors';
import type { ServiceContext } from './context';
import { decodeLedgerCursor, encodeLedgerCursor } from './ledger-cursor';
import { parseDate } from './validation';
import { CHARGE_SQL, rollupSumQuery } from './rollup-sums';

export interface SpendLogRow {
  requestId: string;
  customerId: string | null;
  keyAlias: string | null;
  apiKeyId: string | null;
  model: string;
  provider: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  /** What the provider bills. */
  costPico: Pico;
  /** What the customer is charged (its tier's price); spend, budgets and reports count this. */
  chargePico: Pico;
  costSource: string;
  status: string;
  createdAt: Date;
}

export interface SpendLogQuery {
  customerId?: string | null;
  from?: Date | null;
  to?: Date | null;
  first?: number;
  /** Cursor: the `createdAt|requestId` of the last row of the previous page. */
  after?: string | null;
}

export interface SpendPeriodRow {
  customerId: string;
  periodStart: Date;
  spendPico: Pico;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export { CHARGE_SQL };

export interface SpendReportRow {
  key: string;
  costPico: Pico;
  chargePico: Pico;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export type ReportGroup = 'customer' | 'model' | 'day';

export class SpendService {
  constructor(private readonly ctx: ServiceContext) {}

  currentSpend(customer: CustomerRecord): Promise<Pico> {
    return this.ctx.resolver.currentSpend(customer);
  }

  async logs(query: SpendLogQuery): Promise<{ rows: SpendLogRow[]; hasMore: boolean }> {
    parseDate('from', query.from);
    parseDate('to', query.to);
    await this.ctx.ledger.flush();
    const first = Math.min(Math.max(query.first ?? 100, 1), 1000);
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (query.customerId) {
      conditions.push('customer_id = ?');
      params.push(query.customerId);
    }
    if (query.from) {
      conditions.push('created_at >= ?');
      params.push(query.from.toISOString());
    }
    if (query.to) {
      conditions.push('created_at < ?');
      params.push(query.to.toISOString());
    }
    if (query.after !== undefined && query.after !== null) {
      const cursor = decodeLedgerCursor(query.after);
      conditions.push('(created_at, request_id) < (?, ?)');
      params.push(cursor.createdAt, cursor.requestId);
    }
    const where = conditions.length ? `where ${conditions.join(' and ')}` : '';
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select request_id, customer_id, key_alias, api_key_id, model, provider, endpoint, prompt_tokens, completion_tokens,
              cached_prompt_tokens, cost_pico, ${CHARGE_SQL} as charge_pico, cost_source, status, created_at
       from spend_ledger ${where} order by created_at desc, request_id desc limit ${first + 1}`,
      params as never[],
    );
    const rows = (result.rows as Record<string, unknown>[]).map((row) => ({
      requestId: row.request_id as string,
      customerId: (row.customer_id as string | null) ?? null,
      keyAlias: (row.key_alias as string | null) ?? null,
      apiKeyId: (row.api_key_id as string | null) ?? null,
      model: row.model as string,
      provider: row.provider as string,
      endpoint: row.endpoint as string,
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
      cachedPromptTokens: Number(row.cached_prompt_tokens),
      costPico: BigInt(row.cost_pico as string),
      chargePico: BigInt(row.charge_pico as string),
      costSource: row.cost_source as string,
      status: row.status as string,
      createdAt: new Date(row.created_at as string),
    }));
    return { rows: rows.slice(0, first), hasMore: rows.length > first };
  }

  /** Spend per budget period of one customer, newest first (past periods stay queryable). */
  async periods(customerId: string): Promise<SpendPeriodRow[]> {
    await this.ctx.ledger.flush();
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select period_start, spend_pico, requests, prompt_tokens, completion_tokens from spend_counters
       where customer_id = ? and scope = ? order by period_start desc limit 500`,
      [customerId, OVERALL_SCOPE],
    );
    return (result.rows as Record<string, string>[]).map((row) => ({
      customerId,
      periodStart: new Date(row.period_start!),
      spendPico: BigInt(row.spend_pico!),
      requests: Number(row.requests),
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
    }));
  }

  /** Spend grouped by customer, model or day, from the hourly rollups (see `reportQuery`). */
  async report(from: Date, to: Date, groupBy: ReportGroup, customerId?: string | null): Promise<SpendReportRow[]> {
    parseDate('from', from); // in the range the store handles, or a 400 naming the field
    parseDate('to', to);
    if (to.getTime() <= from.getTime()) throw new GatewayError('bad_request', '"to" must be after "from".', 'to');
    await this.ctx.ledger.flush();
    const { sql, params } = reportQuery(from, to, groupBy, customerId ?? null, this.ctx.config.timezone, Date.now());
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(sql, params as never[]);
    return (result.rows as Record<string, string>[]).map((row) => ({
      key: row.key!,
      costPico: BigInt(row.cost ?? '0'),
      chargePico: BigInt(row.charge ?? '0'),
      requests: Number(row.requests),
      promptTokens: Number(row.prompt ?? 0),
      completionTokens: Number(row.completion ?? 0),
    }));
  }

  /**
   * After a customer's budget or period boundaries change, its period spend is the sum of its
   * spend since the new period start: read from the rollups (daily, hourly, raw rows for a
   * partial hour; rollup-sums.ts), per customer on their indexes, in batches of 1,000.
   * Only customers with spend are written: a counter missing or of an older period counts
   * from zero at admission anyway. `outOfPeriod` names a scope whose counter an admission found
   * in a period its budget no longer has (ReserveResult.outOfPeriod): only that scope is
   * recomputed, and a customer without spend since the start is moved too (from zero, or what a
   * later counter inside the period holds live).
   */
  async recompute(customerIds: string[], options: { outOfPeriod?: string } = {}): Promise<void> {
    if (!customerIds.length) return;
    await this.ctx.ledger.flush();
    for (let index = 0; index < customerIds.length; index += RECOMPUTE_BATCH) {
      const batch = customerIds.slice(index, index + RECOMPUTE_BATCH);
      // Customers grouped by counter: scope and period start.
      const byCounter = new Map<string, { scope: string; model: string | null; start: number; ids: string[] }>();
      const add = (scope: string, model: string | null, start: number, id: string) => {
        const group = `${scope}\u0000${start}`;
        const existing = byCounter.get(group);
        if (existing) existing.ids.push(id);
        else byCounter.set(group, { scope, model, start, ids: [id] });
      };
      const uncached = await readCustomers(this.ctx.orm, batch.filter((id) => !this.ctx.registry.customers.has(id)));
      for (const id of batch) {
        const budget = this.ctx.registry.effectiveBudget(this.ctx.registry.customers.get(id) ?? uncached.get(id));
        add(OVERALL_SCOPE, null, this.ctx.resolver.periodOf(budget).start.getTime(), id);
        for (const [model, modelBudget] of Object.entries(budget?.modelMaxBudget ?? {})) add(modelScope(model), model, this.ctx.resolver.modelPeriodOf(modelBudget).start.getTime(), id);
      }
      for (const { scope, model, start, ids } of byCounter.values()) {
        if (options.outOfPeriod !== undefined && scope !== options.outOfPeriod) continue;
        const sums = this.sumsSince(start, model, { customerIds: ids });
        await this.fillCounters(start, scope, sums.sql, sums.params, options.outOfPeriod !== undefined ? ids : []);
      }
    }
  }

  /**
   * After a budget's per-model budgets changed (a model added, or its period changed), the
   * counters of those models for every customer on it, as `recomputeBudget` does for its period.
   */
  async recomputeBudgetModels(budgetId: string, models: string[]): Promise<void> {
    const budget = this.ctx.registry.budgets.get(budgetId);
    if (!budget || !models.length) return;
    await this.ctx.ledger.flush();
    for (const model of models) {
      const modelBudget = budget.modelMaxBudget?.[model];
      if (!modelBudget) continue;
      const start = this.ctx.resolver.modelPeriodOf(modelBudget).start.getTime();
      await this.fillCounters(start, modelScope(model), ...this.onBudget(budgetId, this.sumsSince(start, model, {})));
    }
  }

  /**
   * Rows of key = customer, charge, requests, prompt, completion since `start`: of one model, or
   * of all; of the customer as it is now. The rollups are keyed by id, and a customer deleted
   * and created again under its id starts from zero: the ledger rows from before its last
   * delete (the audit trail's) are the old customer's, read raw on the ledger's customer index
   * and taken off (only customers deleted since `start` have any).
   */
  private sumsSince(start: number, model: string | null, filter: { customerIds?: string[] }): { sql: string; params: unknown[] } {
    const nowMs = Date.now();
    const options = { ...filter, timezone: 'UTC', order: 'key' as const, limit: null, nowMs };
    let sums = rollupSumQuery(new Date(start), new Date(nowMs + 1), model === null ? ['customer'] : ['customer', 'model'], options);
    if (model !== null) sums = { sql: `select key, charge, requests, prompt, completion from (${sums.sql}) by_model where key2 = ?`, params: [...sums.params, model] };
    const startIso = new Date(start).toISOString();
    return {
      sql: `select s.key, (s.charge::numeric - coalesce(o.charge, 0))::text as charge, s.requests - coalesce(o.requests, 0) as requests,
              s.prompt - coalesce(o.prompt, 0) as prompt, s.completion - coalesce(o.completion, 0) as completion
            from (${sums.sql}) s
            left join lateral (
              select sum(${CHARGE_SQL}) as charge, count(*) as requests, sum(l.prompt_tokens) as prompt, sum(l.completion_tokens) as completion
              from (select max(a.created_at) as at from customer_audit a where a.customer_id = s.key and a.action = 'deleted' and a.created_at > ?) deleted
              join spend_ledger l on l.customer_id = s.key and l.created_at >= ? and l.created_at < deleted.at${model === null ? '' : ' and l.model = ?'}
            ) o on true`,
      params: [...sums.params, startIso, startIso, ...(model === null ? [] : [model])],
    };
  }

  /** Those of `sums` whose customer is on the budget (with the default budget, also those without one). */
  private onBudget(budgetId: string | null, sums: { sql: string; params: unknown[] }): [string, unknown[]] {
    const where =
      budgetId === null
        ? { sql: 'c.budget_id is null', params: [] }
        : budgetId === this.ctx.registry.defaultBudgetId
          ? { sql: '(c.budget_id = ? or c.budget_id is null)', params: [budgetId] }
          : { sql: 'c.budget_id = ?', params: [budgetId] };
    return [`select x.* from (${sums.sql}) x join customers c on c.user_id = x.key where ${where.sql}`, [...sums.params, ...where.params]];
  }

  /**
   * The same for every customer under one budget (with the default budget, those without one
   * too; null: customers without a budget while there is no default) after its period changed:
   * driven by the rollups since the new period start, so it reads the customers who spent
   * since then, never every customer on the budget (one without spend since has none to count).
   */
  async recomputeBudget(budgetId: string | null): Promise<void> {
    await this.ctx.ledger.flush();
    const budget = budgetId === null ? null : (this.ctx.registry.budgets.get(budgetId) ?? null);
    const start = this.ctx.resolver.periodOf(budget).start.getTime();
    await this.fillCounters(start, OVERALL_SCOPE, ...this.onBudget(budgetId, this.sumsSince(start, null, {})));
  }

  /**
   * Writes the period counters at `start` from `sumsSql` (rows of key = customer, charge,
   * requests, prompt, completion) where they are missing, in the store and in the spend book;
   * and the book's counters of `alsoMove` without a row there, from zero.
   */
  private async fillCounters(start: number, scope: string, sumsSql: string, params: unknown[], alsoMove: string[] = []): Promise<void> {
    const startIso = new Date(start).toISOString();
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `with sums as (${sumsSql})
       insert into spend_counters (customer_id, scope, period_start, spend_pico, requests, prompt_tokens, completion_tokens, updated_at)
       select key, ?, ?, charge::bigint, requests, prompt, completion, now() from sums where key <> ''
       on conflict (customer_id, scope, period_start) do update set spend_pico = spend_counters.spend_pico
       returning customer_id, spend_pico::text as spend`,
      [...params, scope, startIso] as never[],
    );
    // A counter that exists already is the live one: the sum read above misses what other
    // processes have charged but not yet flushed to the ledger, so it may only fill a gap,
    // never overwrite (the ledger's later flushes add to a row inserted here; the no-op
    // update only returns the stored row). The book is seeded with the stored value where it
    // lacks the counter, or holds it in another period (the budget's period moved, earlier or
    // later: `start` is now the current one); a counter of this period is live, kept.
    const rows = result.rows as { customer_id: string; spend: string }[];
    const summed = new Set(rows.map((row) => row.customer_id));
    for (const customerId of alsoMove) if (!summed.has(customerId)) rows.push({ customer_id: customerId, spend: '0' });
    for (let index = 0; index < rows.length; index += 500) {
      await Promise.all(
        rows
          .slice(index, index + 500)
          .map((row) => this.ctx.spendBook.seed({ customerId: row.customer_id, scope, periodStartMs: start }, BigInt(row.spend), { onlyIfMissing: true, periodChanged: true })),
      );
    }
  }
}

const RECOMPUTE_BATCH = 1000;

/** Kept under its old name for the routes; the cursor itself lives in ledger-cursor.ts. */
export const encodeCursor = encodeLedgerCursor;

/**
 * The report's SQL: from the rollups (see rollup-sums.ts), raw ledger rows only for the
 * partial hours at either end; days are days of the gateway's timezone.
 */
export function reportQuery(from: Date, to: Date, groupBy: ReportGroup, customerId: string | null, timezone: string, nowMs?: number): { sql: string; params: unknown[] } {
  return rollupSumQuery(from, to, [groupBy], { customerId, timezone, order: groupBy === 'day' ? 'key' : 'charge', limit: 1000, nowMs });
}
