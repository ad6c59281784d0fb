/**
 * @module Customers by their spend in the current budget period, in the store, on indexes.
 * A customer's period is its budget's (its own or a tier, else the default budget, else its
 * lifetime), and every customer of one budget shares that budget's period start: so "this
 * period's counter" of a customer is the `spend_counters` row at its budget's current start,
 * and those rows are ordered by `spend_counters_period_spend_index` (scope, period_start,
 * spend_pico desc, customer_id). Near cap, over budget and sort by spend walk that index per
 * distinct period start (a few: periods are aligned) with a LIMIT, joining each row to its
 * customer by primary key to check it is on a budget of that start; no query reads every
 * customer. The store's counters are those the ledger has committed (this process flushes
 * first); the live counters of other processes may be ahead by a batch, so lists built here
 * show each customer's live spend and status from `CustomerService.views`. Descending spend
 * (ties by id) is the index's own order; ascending reads it backwards, so a large group of
 * customers with one same spend is sorted by id as it is read.
 */
import { LIFETIME_START } from '../governance/periods';
import { OVERALL_SCOPE } from '../governance/resolver';
import { MAX_PICO, type Pico } from '../shared/money';
import type { ServiceContext } from './context';
import { rollupSumQuery } from './rollup-sums';

export interface BudgetPeriodRow {
  budget_id: string;
  start: string;
  max_pico: string | null;
}

export interface CapStandingRow {
  customerId: string;
  spendPico: Pico;
  maxBudgetPico: Pico;
  budgetId: string;
}

export interface PeriodSpendFilter {
  /** Matches a substring of the id or alias (an escaped ilike pattern, `%…%`). */
  pattern: string | null;
  /** The budget in force: a budget id ('' = none). */
  budgetId?: string | null;
}

export class PeriodSpend {
  constructor(private readonly ctx: ServiceContext) {}

  /** Each budget's current period start and max budget, as the SQL below reads them. */
  periods(): BudgetPeriodRow[] {
    return [...this.ctx.registry.budgets.values()].map((budget) => ({
      budget_id: budget.budgetId,
      start: this.ctx.resolver.periodOf(budget).start.toISOString(),
      max_pico: budget.maxBudget === null ? null : budget.maxBudget.toString(),
    }));
  }

  /** The distinct period starts customers can be in now (the lifetime start included). */
  private starts(periods: BudgetPeriodRow[]): string[] {
    return [...new Set([LIFETIME_START.toISOString(), ...periods.map((p) => p.start)])];
  }

  /**
   * SQL common to every query: `p` is the effective budget's period of customer `c`
   * (its own budget, else the default; none: the lifetime). Bindings: periods json, default id.
   */
  private static readonly EFFECTIVE = `left join jsonb_to_recordset(?::jsonb) as p(budget_id text, start timestamptz, max_pico bigint)
      on p.budget_id = coalesce(c.budget_id, ?)`;

  /**
   * With `indexed`, the planner is held to index reads joined by nested loops: it cannot see
   * into the budgets' json (their caps and starts), so it would guess millions of matching
   * counters and pick a full scan and hash join, where an index range per budget and a
   * primary-key read per row it finds are what these queries are built for.
   */
  private async query(sql: string, bindings: unknown[], indexed = false): Promise<{ rows: unknown[] }> {
    const knex = this.ctx.orm.em.getConnection().getKnex();
    if (!indexed) return (await knex.raw(sql, bindings as never[])) as { rows: unknown[] };
    return knex.transaction(async (trx) => {
      await trx.raw(`select set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)`);
      return (await trx.raw(sql, bindings as never[])) as { rows: unknown[] };
    });
  }

  /**
   * Sum of every customer's spend in its current period. When every customer is in the same
   * period (one start for every budget, and the lifetime only if no default budget applies),
   * that is the spend since that start of every request with a customer: two rollup sums (all,
   * minus those without a customer), a few rows an hour. Otherwise the counters at each start,
   * of the customers whose budget has that start.
   */
  async total(): Promise<Pico> {
    await this.ctx.ledger.flush();
    const periods = this.periods();
    const defaultId = this.ctx.registry.defaultBudgetId;
    const reachable = new Set(periods.map((p) => p.start));
    if (defaultId === null || !this.ctx.registry.budgets.has(defaultId)) reachable.add(LIFETIME_START.toISOString());
    if (reachable.size <= 1) {
      const start = new Date([...reachable][0] ?? LIFETIME_START.toISOString());
      const end = new Date(Date.now() + 1);
      const sum = async (customerId: string | null) => {
        const { sql, params } = rollupSumQuery(start, end, ['none'], { customerId, timezone: 'UTC', order: 'key', limit: 1, nowMs: Date.now() });
        const row = (await this.query(sql, params)).rows[0] as { charge: string } | undefined;
        return BigInt(row?.charge ?? '0');
      };
      return (await sum(null)) - (await sum(''));
    }
    // Per start: the counters at it (index range), minus those of customers on a budget with another start.
    const result = await this.query(
      `select coalesce(sum(sc.spend_pico), 0)::text as spend
       from unnest(?::timestamptz[]) as s(start)
       join spend_counters sc on sc.scope = ? and sc.period_start = s.start
       join customers c on c.user_id = sc.customer_id
       ${PeriodSpend.EFFECTIVE}
       where coalesce(p.start, ?) = s.start`,
      [this.starts(periods), OVERALL_SCOPE, JSON.stringify(periods), this.ctx.registry.defaultBudgetId, LIFETIME_START.toISOString()],
    );
    return BigInt((result.rows as { spend: string }[])[0]!.spend);
  }

  /** Customers at or past `fraction` of their max budget, the most used first: per budget, an index range read from the top. */
  async nearCap(fraction: number, first: number): Promise<CapStandingRow[]> {
    await this.ctx.ledger.flush();
    const capped = this.periods().filter((p) => p.max_pico !== null);
    if (!capped.length) return [];
    const targets = capped.map((p) => ({ ...p, threshold: fraction === 0 || p.max_pico === '0' ? '0' : ceilDecimal(BigInt(p.max_pico!), fraction) }));
    const result = await this.query(
      `select x.customer_id, x.spend_pico::text as spend, t.max_pico::text as max, t.budget_id
       from jsonb_to_recordset(?::jsonb) as t(budget_id text, start timestamptz, max_pico bigint, threshold bigint)
       cross join lateral (
         select sc.customer_id, sc.spend_pico from spend_counters sc
         join customers c on c.user_id = sc.customer_id
         where sc.scope = ? and sc.period_start = t.start and sc.spend_pico >= t.threshold
           and coalesce(c.budget_id, ?) = t.budget_id
         order by sc.spend_pico desc, sc.customer_id asc limit ?
       ) x
       order by case when t.max_pico = 0 then null else x.spend_pico::numeric / t.max_pico end desc nulls first, x.customer_id asc
       limit ?`,
      [JSON.stringify(targets), OVERALL_SCOPE, this.ctx.registry.defaultBudgetId, first, first], true
    );
    return (result.rows as { customer_id: string; spend: string; max: string; budget_id: string }[]).map((row) => ({
      customerId: row.customer_id,
      spendPico: BigInt(row.spend),
      maxBudgetPico: BigInt(row.max),
      budgetId: row.budget_id,
    }));
  }

  /**
   * Ids of customers in spend order (desc or asc, then id), after the customer `after` in
   * that order, at most `limit`. Customers with a counter come from the counters' index, per
   * period start; those without one (spend 0) from the primary key, with an anti-join.
   */
  async idsBySpend(direction: 'desc' | 'asc', filter: PeriodSpendFilter, limit: number, after: string | null, offset = 0): Promise<string[]> {
    await this.ctx.ledger.flush();
    const periods = this.periods();
    const defaultId = this.ctx.registry.defaultBudgetId;
    const { sql: filterSql, bindings: filterBindings } = filterOf(filter, defaultId);
    let afterSpend: bigint | null = null;
    if (after !== null) afterSpend = await this.spendOf(after, periods);
    const want = limit + offset;
    const ids: string[] = [];
    // Zero spend (no counter, or a counter at 0) sorts last descending, first ascending.
    const spent = async () => {
      let keyset = '';
      const keysetBindings: unknown[] = [];
      if (afterSpend !== null && afterSpend > 0n) {
        keyset = direction === 'desc' ? 'and (sc.spend_pico < ? or (sc.spend_pico = ? and sc.customer_id > ?))' : 'and (sc.spend_pico > ? or (sc.spend_pico = ? and sc.customer_id > ?))';
        keysetBindings.push(afterSpend.toString(), afterSpend.toString(), after);
      }
      const result = await this.query(
        `select x.customer_id from unnest(?::timestamptz[]) as s(start)
         cross join lateral (
           select sc.customer_id, sc.spend_pico from spend_counters sc
           join customers c on c.user_id = sc.customer_id
           ${PeriodSpend.EFFECTIVE}
           where sc.scope = ? and sc.period_start = s.start and sc.spend_pico > 0 ${keyset}
             and coalesce(p.start, ?) = s.start ${filterSql}
           order by sc.spend_pico ${direction}, sc.customer_id asc limit ?
         ) x
         order by x.spend_pico ${direction}, x.customer_id asc limit ?`,
        [this.starts(periods), JSON.stringify(periods), defaultId, OVERALL_SCOPE, ...keysetBindings, LIFETIME_START.toISOString(), ...filterBindings, want, want], true
      );
      return (result.rows as { customer_id: string }[]).map((row) => row.customer_id);
    };
    const zeros = async (need: number) => {
      const afterId = afterSpend === 0n ? after : null;
      const result = await this.query(
        `select c.user_id from customers c
         ${PeriodSpend.EFFECTIVE}
         where not exists (select 1 from spend_counters sc where sc.customer_id = c.user_id and sc.scope = ? and sc.period_start = coalesce(p.start, ?) and sc.spend_pico > 0)
           ${afterId !== null ? 'and c.user_id > ?' : ''} ${filterSql}
         order by c.user_id limit ?`,
        [JSON.stringify(periods), defaultId, OVERALL_SCOPE, LIFETIME_START.toISOString(), ...(afterId !== null ? [afterId] : []), ...filterBindings, need], true
      );
      return (result.rows as { user_id: string }[]).map((row) => row.user_id);
    };
    if (direction === 'desc') {
      if (afterSpend === null || afterSpend > 0n) ids.push(...(await spent()));
      if (ids.length < want) ids.push(...(await zeros(want - ids.length)));
    } else {
      if (afterSpend === null || afterSpend === 0n) ids.push(...(await zeros(want)));
      if (ids.length < want) ids.push(...(await spent()));
    }
    return ids.slice(offset, offset + limit);
  }

  /** One customer's stored counter in its current period (0 without one). */
  private async spendOf(customerId: string, periods: BudgetPeriodRow[]): Promise<bigint> {
    const result = await this.query(
      `select coalesce(sc.spend_pico, 0)::text as spend from customers c
       ${PeriodSpend.EFFECTIVE}
       left join spend_counters sc on sc.customer_id = c.user_id and sc.scope = ? and sc.period_start = coalesce(p.start, ?)
       where c.user_id = ?`,
      [JSON.stringify(periods), this.ctx.registry.defaultBudgetId, OVERALL_SCOPE, LIFETIME_START.toISOString(), customerId], true
    );
    const row = (result.rows as { spend: string }[])[0];
    return row ? BigInt(row.spend) : 0n;
  }

  /**
   * Ids of customers over their max budget this period (by the store's counters), in id
   * order after `after`: per capped budget, the counters at or above its max (an index range).
   */
  async idsOverBudget(filter: PeriodSpendFilter, limit: number, after: string | null): Promise<string[]> {
    await this.ctx.ledger.flush();
    const capped = this.periods().filter((p) => p.max_pico !== null);
    if (!capped.length) return [];
    const { sql: filterSql, bindings } = filterOf(filter, this.ctx.registry.defaultBudgetId);
    const result = await this.query(
      `select x.customer_id from jsonb_to_recordset(?::jsonb) as t(budget_id text, start timestamptz, max_pico bigint)
       cross join lateral (
         select sc.customer_id from (
           -- The counters past the cap first (an index range), then their customers: never a
           -- walk of the customers in id order looking for them (offset 0 keeps it a subquery).
           select customer_id from spend_counters where scope = ? and period_start = t.start and spend_pico >= t.max_pico
             ${after !== null ? 'and customer_id > ?' : ''} offset 0
         ) sc join customers c on c.user_id = sc.customer_id
         where not c.blocked and coalesce(c.budget_id, ?) = t.budget_id ${filterSql}
         order by sc.customer_id limit ?
       ) x
       order by x.customer_id limit ?`,
      [JSON.stringify(capped), OVERALL_SCOPE, ...(after !== null ? [after] : []), this.ctx.registry.defaultBudgetId, ...bindings, limit, limit], true
    );
    return (result.rows as { customer_id: string }[]).map((row) => row.customer_id);
  }

  /** Ids of customers neither blocked nor over budget by the store's counters, in id order (the primary key, an anti-join per row). */
  async idsNotBlockedNorOver(filter: PeriodSpendFilter, limit: number, after: string | null, exclude: string[]): Promise<string[]> {
    await this.ctx.ledger.flush();
    const periods = this.periods();
    const { sql: filterSql, bindings } = filterOf(filter, this.ctx.registry.defaultBudgetId);
    const result = await this.query(
      `select c.user_id from customers c
       ${PeriodSpend.EFFECTIVE}
       where not c.blocked
         and not exists (select 1 from spend_counters sc where sc.customer_id = c.user_id and sc.scope = ? and sc.period_start = coalesce(p.start, ?) and sc.spend_pico >= p.max_pico)
         and c.user_id <> all(?::text[])
         ${after !== null ? 'and c.user_id > ?' : ''} ${filterSql}
       order by c.user_id limit ?`,
      [JSON.stringify(periods), this.ctx.registry.defaultBudgetId, OVERALL_SCOPE, LIFETIME_START.toISOString(), exclude, ...(after !== null ? [after] : []), ...bindings, limit], true
    );
    return (result.rows as { user_id: string }[]).map((row) => row.user_id);
  }
}

/** The list filters as SQL on `c` (bindings in order). */
function filterOf(filter: PeriodSpendFilter, defaultBudgetId: string | null): { sql: string; bindings: unknown[] } {
  const clauses: string[] = [];
  const bindings: unknown[] = [];
  if (filter.pattern !== null) {
    clauses.push('(c.user_id ilike ? or c.alias ilike ?)');
    bindings.push(filter.pattern, filter.pattern);
  }
  if (filter.budgetId === '') clauses.push('c.budget_id is null');
  else if (filter.budgetId !== undefined && filter.budgetId !== null) {
    if (filter.budgetId === defaultBudgetId) clauses.push('(c.budget_id = ? or c.budget_id is null)');
    else clauses.push('c.budget_id = ?');
    bindings.push(filter.budgetId);
  }
  return { sql: clauses.map((clause) => `and ${clause}`).join(' '), bindings };
}

/** ceil(max × fraction) in pico-dollars, for an index bound (fraction has at most double precision). */
function ceilDecimal(max: bigint, fraction: number): string {
  const scale = 1_000_000_000n;
  const scaled = BigInt(Math.round(fraction * Number(scale)));
  const product = (max * scaled + scale - 1n) / scale;
  return (product > MAX_PICO ? MAX_PICO : product).toString(); // a bigint column compares on its index
}
