/**
 * @module Spend aggregates for the operator's overview: totals, a series over a range, top
 * customers, by model, by tier, customers near or over their cap. Every ledger sum goes
 * through `sumLedger`, grouped by at most customer, model and a time bucket: exactly what an
 * hourly customer × model rollup holds, so pointing this one function at rollups keeps every
 * aggregate fast with millions of ledger rows. Period spend comes from the spend counters
 * (already one row per customer per period).
 */
import { DateTime, IANAZone } from 'luxon';
import { GatewayError } from '../shared/errors';
import type { Pico } from '../shared/money';
import type { ServiceContext } from './context';
import { invalid, parseDate } from './validation';
import { rollupSumQuery } from './rollup-sums';
import { PeriodSpend } from './period-spend';

export interface SpendSum {
  key: string;
  spendPico: Pico;
  requests: number;
}

export interface CapStanding {
  customerId: string;
  spendPico: Pico;
  maxBudgetPico: Pico;
  budgetId: string;
}

export type SeriesBucket = 'hour' | 'day';
type LedgerGroup = 'customer' | 'model' | SeriesBucket | 'none';

/** Longest range one series may cover, so a chart never asks for a century of days. */
const MAX_SERIES_POINTS = 1000;

export function parseTimeZone(field: string, value: string | null | undefined, fallback: string): string {
  if (value === null || value === undefined || value === '') return fallback;
  if (!IANAZone.isValidZone(value)) throw invalid(field, `"${value}" is not an IANA time zone (e.g. "UTC", "Europe/Paris")`);
  return value;
}

export function checkRange(from: Date, to: Date): void {
  parseDate('from', from);
  parseDate('to', to);
  if (to.getTime() <= from.getTime()) throw new GatewayError('bad_request', '"to" must be after "from".', 'to');
}

export class SpendAggregates {
  private readonly periodSpend: PeriodSpend;

  constructor(private readonly ctx: ServiceContext) {
    this.periodSpend = new PeriodSpend(ctx);
  }

  /** Spend and requests in [from, to). */
  async total(from: Date, to: Date): Promise<{ spendPico: Pico; requests: number }> {
    const [row] = await this.sumLedger(from, to, 'none');
    return { spendPico: row?.spendPico ?? 0n, requests: row?.requests ?? 0 };
  }

  /** Spend per hour or day in `timeZone`, every bucket of the range present (zeros included). */
  async series(from: Date, to: Date, bucket: SeriesBucket, timeZone: string, customerId: string | null = null): Promise<SpendSum[]> {
    checkRange(from, to);
    const unit = bucket === 'day' ? 'day' : 'hour';
    const keys: string[] = [];
    let cursor = DateTime.fromJSDate(from, { zone: timeZone }).startOf(unit);
    while (cursor.toMillis() < to.getTime()) {
      keys.push(bucketKey(cursor, bucket));
      if (keys.length > MAX_SERIES_POINTS) throw invalid('to', `the range holds more than ${MAX_SERIES_POINTS} ${bucket}s; pick a shorter range or a coarser bucket`);
      cursor = cursor.plus({ [unit]: 1 });
    }
    const sums = new Map((await this.sumLedger(from, to, bucket, timeZone, MAX_SERIES_POINTS, customerId)).map((row) => [row.key, row]));
    return keys.map((key) => sums.get(key) ?? { key, spendPico: 0n, requests: 0 });
  }

  topCustomers(from: Date, to: Date, first: number): Promise<SpendSum[]> {
    return this.sumLedger(from, to, 'customer', undefined, first);
  }

  byModel(from: Date, to: Date): Promise<SpendSum[]> {
    return this.sumLedger(from, to, 'model', undefined, 100);
  }

  /**
   * By the budget in force for each customer now (its tier, or the default budget); '' for none.
   * The per-customer sums are joined to the customers' rows in the store (one primary-key
   * read per customer that spent in the range), not to this process's cache.
   */
  async byTier(from: Date, to: Date): Promise<SpendSum[]> {
    checkRange(from, to);
    await this.ctx.ledger.flush();
    const inner = rollupSumQuery(from, to, ['customer'], { timezone: this.ctx.config.timezone, order: 'key', limit: null, nowMs: Date.now() });
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select case when s.key = '' then null else coalesce(c.budget_id, ?) end as tier, sum(s.cost::numeric)::text as cost, sum(s.requests) as requests
       from (${inner.sql}) s left join customers c on c.user_id = s.key
       group by 1 order by sum(s.cost::numeric) desc, 1 asc nulls first limit 1000`,
      [this.ctx.registry.defaultBudgetId ?? '', ...inner.params] as never[],
    );
    const tiers = new Map<string, SpendSum>();
    for (const row of result.rows as { tier: string | null; cost: string; requests: string }[]) {
      const tier = row.tier !== null && this.ctx.registry.budgets.has(row.tier) ? row.tier : '';
      const sum = tiers.get(tier) ?? { key: tier, spendPico: 0n, requests: 0 };
      sum.spendPico += BigInt(row.cost);
      sum.requests += Number(row.requests);
      tiers.set(tier, sum);
    }
    return [...tiers.values()].sort((a, b) => (a.spendPico < b.spendPico ? 1 : a.spendPico > b.spendPico ? -1 : 0));
  }

  /**
   * The sum of every customer's spend in the current period of the budget in force (lifetime
   * for a budget without a period), from the store's counters (period-spend.ts).
   */
  currentPeriodTotal(): Promise<Pico> {
    return this.periodSpend.total();
  }

  /** Customers at or past `fraction` of their max budget, the most used first (an index read per capped budget). */
  nearCap(fraction: number, first: number): Promise<CapStanding[]> {
    return this.periodSpend.nearCap(fraction, first);
  }

  /** The one spend sum every aggregate above is made of: rollups, raw rows for partial hours only (rollup-sums.ts). */
  private async sumLedger(from: Date, to: Date, group: LedgerGroup, timeZone = this.ctx.config.timezone, limit = 1000, customerId: string | null = null): Promise<SpendSum[]> {
    checkRange(from, to);
    await this.ctx.ledger.flush();
    const order = group === 'day' || group === 'hour' ? 'key' : 'cost';
    const { sql, params } = rollupSumQuery(from, to, [group], { customerId, timezone: timeZone, order, limit: Math.max(1, Math.min(limit, 1000)), nowMs: Date.now() });
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(sql, params as never[]);
    return (result.rows as { key: string; cost: string; requests: string }[]).map((row) => ({ key: row.key, spendPico: BigInt(row.cost), requests: Number(row.requests) }));
  }
}

function bucketKey(at: DateTime, bucket: SeriesBucket): string {
  return bucket === 'day' ? at.toFormat('yyyy-MM-dd') : at.toFormat("yyyy-MM-dd'T'HH");
}

/** The start of today in `timeZone`. */
export function startOfDay(now: Date, timeZone: string): Date {
  return DateTime.fromJSDate(now, { zone: timeZone }).startOf('day').toJSDate();
}
