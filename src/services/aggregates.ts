/**
 * @module Spend aggregates for the operator's overview: totals, a series over a range, top
 * customers, by model, by tier, customers near or over their cap. Every ledger sum goes
 * through `sumLedger`, grouped by at most customer, model and a time bucket: exactly what an
 * hourly customer × model rollup holds, so pointing this one function at rollups keeps every
 * aggregate fast with millions of ledger rows. Period spend comes from the spend counters
 * (already one row per customer per period).
 */
import { DateTime, IANAZone } from 'luxon';
import { OVERALL_SCOPE } from '../governance/resolver';
import { GatewayError } from '../shared/errors';
import type { Pico } from '../shared/money';
import type { ServiceContext } from './context';
import { invalid, parseDate } from './validation';

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
  constructor(private readonly ctx: ServiceContext) {}

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

  /** By the budget in force for each customer now (its tier, or the default budget); '' for none. */
  async byTier(from: Date, to: Date): Promise<SpendSum[]> {
    const tiers = new Map<string, SpendSum>();
    for (const row of await this.sumLedger(from, to, 'customer')) {
      const customer = this.ctx.registry.customers.get(row.key);
      const tier = row.key === '' ? '' : (this.ctx.registry.effectiveBudget(customer)?.budgetId ?? '');
      const sum = tiers.get(tier) ?? { key: tier, spendPico: 0n, requests: 0 };
      sum.spendPico += row.spendPico;
      sum.requests += row.requests;
      tiers.set(tier, sum);
    }
    return [...tiers.values()].sort((a, b) => (a.spendPico < b.spendPico ? 1 : a.spendPico > b.spendPico ? -1 : 0));
  }

  /**
   * Each customer's spend in the current period of the budget in force (lifetime for a
   * budget without a period), from the counters: what its cap is measured against.
   */
  async currentPeriodSpend(): Promise<Map<string, Pico>> {
    await this.ctx.ledger.flush();
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select distinct on (customer_id) customer_id, period_start, spend_pico from spend_counters
       where scope = ? order by customer_id, period_start desc`,
      [OVERALL_SCOPE],
    );
    const spends = new Map<string, Pico>();
    for (const row of result.rows as { customer_id: string; period_start: string; spend_pico: string }[]) {
      const budget = this.ctx.registry.effectiveBudget(this.ctx.registry.customers.get(row.customer_id));
      const start = this.ctx.resolver.periodOf(budget).start.getTime();
      if (new Date(row.period_start).getTime() === start) spends.set(row.customer_id, BigInt(row.spend_pico));
    }
    return spends;
  }

  /** Customers at or past `fraction` of their max budget, the most used first. */
  async nearCap(fraction: number, first: number): Promise<CapStanding[]> {
    const standings: CapStanding[] = [];
    for (const [customerId, spendPico] of await this.currentPeriodSpend()) {
      const budget = this.ctx.registry.effectiveBudget(this.ctx.registry.customers.get(customerId));
      if (!budget || budget.maxBudget === null) continue;
      const max = budget.maxBudget;
      if (max === 0n ? true : Number(spendPico) >= Number(max) * fraction) standings.push({ customerId, spendPico, maxBudgetPico: max, budgetId: budget.budgetId });
    }
    const ratio = (s: CapStanding) => (s.maxBudgetPico === 0n ? Infinity : Number(s.spendPico) / Number(s.maxBudgetPico));
    return standings.sort((a, b) => ratio(b) - ratio(a) || a.customerId.localeCompare(b.customerId)).slice(0, first);
  }

  /** The one ledger sum every aggregate above is made of (see the module comment). */
  private async sumLedger(from: Date, to: Date, group: LedgerGroup, timeZone = this.ctx.config.timezone, limit = 1000, customerId: string | null = null): Promise<SpendSum[]> {
    checkRange(from, to);
    await this.ctx.ledger.flush();
    const zone = timeZone.replace(/'/g, "''");
    const key = {
      none: `''`,
      customer: `coalesce(customer_id, '')`,
      model: 'model',
      day: `to_char(created_at at time zone '${zone}', 'YYYY-MM-DD')`,
      hour: `to_char(date_trunc('hour', created_at at time zone '${zone}'), 'YYYY-MM-DD"T"HH24')`,
    }[group];
    const order = group === 'day' || group === 'hour' ? '1 asc' : 'sum(cost_pico) desc, 1 asc';
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const params: string[] = [from.toISOString(), to.toISOString()];
    if (customerId !== null) params.push(customerId);
    const result = await knex.raw(
      `select ${key} as key, coalesce(sum(cost_pico), 0)::text as spend, count(*) as requests
       from spend_ledger where created_at >= ? and created_at < ? ${customerId !== null ? 'and customer_id = ?' : ''}
       group by 1 order by ${order} limit ${Math.max(1, Math.min(limit, 1000))}`,
      params,
    );
    return (result.rows as { key: string; spend: string; requests: string }[]).map((row) => ({ key: row.key, spendPico: BigInt(row.spend), requests: Number(row.requests) }));
  }
}

function bucketKey(at: DateTime, bucket: SeriesBucket): string {
  return bucket === 'day' ? at.toFormat('yyyy-MM-dd') : at.toFormat("yyyy-MM-dd'T'HH");
}

/** The start of today in `timeZone`. */
export function startOfDay(now: Date, timeZone: string): Date {
  return DateTime.fromJSDate(now, { zone: timeZone }).startOf('day').toJSDate();
}
