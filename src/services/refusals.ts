/**
 * @module Refused requests as the console reads them (activity/refusals.ts writes them):
 * a customer's list, counts by reason, and who was rate-limited a moment ago.
 */
import type { ServiceContext } from './context';
import { checkRange } from './aggregates';

export interface RefusalRow {
  customerId: string;
  model: string;
  reason: string;
  status: number;
  limitType: string | null;
  limitValue: string | null;
  budgetId: string | null;
  message: string;
  count: number;
  firstAt: Date;
  lastAt: Date;
}

export interface ReasonCount {
  reason: string;
  count: number;
  customers: number;
}

/** A customer refused by a rate limit this recently reads "Rate-limited". */
export const RATE_LIMITED_WINDOW_MS = 60_000;

export class RefusalService {
  constructor(private readonly ctx: ServiceContext) {}

  /** Newest first; each row is one customer × model × reason × minute with its count. */
  async list(options: { customerId?: string | null; from?: Date | null; to?: Date | null; first: number }): Promise<RefusalRow[]> {
    await this.ctx.refusals.flush();
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (options.customerId) {
      conditions.push('customer_id = ?');
      params.push(options.customerId);
    }
    if (options.from && options.to) checkRange(options.from, options.to);
    if (options.from) {
      conditions.push('last_at >= ?');
      params.push(options.from.toISOString());
    }
    if (options.to) {
      conditions.push('first_at < ?');
      params.push(options.to.toISOString());
    }
    const where = conditions.length ? `where ${conditions.join(' and ')}` : '';
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(`select * from refused_requests ${where} order by last_at desc limit ${Math.max(1, Math.min(options.first, 1000))}`, params as never[]);
    return (result.rows as Record<string, unknown>[]).map((row) => ({
      customerId: row.customer_id as string,
      model: row.model as string,
      reason: row.reason as string,
      status: Number(row.status),
      limitType: (row.limit_type as string | null) ?? null,
      limitValue: (row.limit_value as string | null) ?? null,
      budgetId: (row.budget_id as string | null) ?? null,
      message: row.message as string,
      count: Number(row.count),
      firstAt: new Date(row.first_at as string),
      lastAt: new Date(row.last_at as string),
    }));
  }

  async byReason(from: Date, to: Date): Promise<ReasonCount[]> {
    checkRange(from, to);
    await this.ctx.refusals.flush();
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select reason, sum(count)::bigint as count, count(distinct customer_id) as customers from refused_requests
       where minute >= ? and minute < ? group by reason order by 2 desc`,
      [new Date(Math.floor(from.getTime() / 60_000) * 60_000).toISOString(), to.toISOString()],
    );
    return (result.rows as { reason: string; count: string; customers: string }[]).map((row) => ({ reason: row.reason, count: Number(row.count), customers: Number(row.customers) }));
  }

  /** Of `customerIds` (all when null), those refused by a rate limit in the last minute. */
  async rateLimited(customerIds: string[] | null): Promise<Set<string>> {
    await this.ctx.refusals.flush();
    const since = new Date(this.ctx.now().getTime() - RATE_LIMITED_WINDOW_MS).toISOString();
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = customerIds
      ? await knex.raw(
          `select distinct customer_id from refused_requests where reason = 'rate_limit_exceeded' and last_at >= ? and customer_id in (select jsonb_array_elements_text(?::jsonb))`,
          [since, JSON.stringify(customerIds)],
        )
      : await knex.raw(`select distinct customer_id from refused_requests where reason = 'rate_limit_exceeded' and last_at >= ?`, [since]);
    return new Set((result.rows as { customer_id: string }[]).map((row) => row.customer_id));
  }
}
