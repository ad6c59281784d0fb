/**
 * @module Spend queries: current-period spend (from memory, read-your-writes), ledger rows,
 * period history and reports (from the store, after flushing what is queued), and
 * recomputing a customer's period spend when its budget or period changes.
 */
import { OVERALL_SCOPE } from '../governance/resolver';
import type { CustomerRecord } from '../governance/records';
import type { Pico } from '../shared/money';
import { readCustomers } from '../store/customer-store';
import { GatewayError } from '../shared/errors';
import type { ServiceContext } from './context';
import { decodeLedgerCursor, encodeLedgerCursor } from './ledger-cursor';
import { parseDate } from './validation';

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

/**
 * The customer's charge of a ledger row: rows written before charges existed have none, and
 * were charged their cost (the migration backfills them; this keeps any row it missed exact).
 */
export const CHARGE_SQL = 'coalesce(charge_pico, cost_pico)';

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
    const { sql, params } = reportQuery(from, to, groupBy, customerId ?? null, this.ctx.config.timezone);
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
   * ledger rows since the new period start. Recomputed in one grouped query and written to
   * both the store's counters and the in-memory book.
   */
  async recompute(customerIds: string[]): Promise<void> {
    if (!customerIds.length) return;
    await this.ctx.ledger.flush();
    const byStart = new Map<number, string[]>();
    const uncached = await readCustomers(this.ctx.orm, customerIds.filter((id) => !this.ctx.registry.customers.has(id)));
    for (const id of customerIds) {
      const budget = this.ctx.registry.effectiveBudget(this.ctx.registry.customers.get(id) ?? uncached.get(id));
      const start = this.ctx.resolver.periodOf(budget).start.getTime();
      byStart.set(start, [...(byStart.get(start) ?? []), id]);
    }
    const knex = this.ctx.orm.em.getConnection().getKnex();
    for (const [start, ids] of byStart) {
      const startIso = new Date(start).toISOString();
      // Whole hours from the rollups; raw rows only for the partial hour a period may start in.
      const firstWholeHour = hourCeil(start);
      const idList = JSON.stringify(ids);
      const params: unknown[] = [idList, new Date(firstWholeHour).toISOString()];
      let partialHour = '';
      if (firstWholeHour > start) {
        partialHour = `union all select customer_id, ${CHARGE_SQL}, 1, prompt_tokens, completion_tokens from spend_ledger
          where customer_id in (select jsonb_array_elements_text(?::jsonb)) and created_at >= ? and created_at < ?`;
        params.push(idList, startIso, new Date(firstWholeHour).toISOString());
      }
      const result = await knex.raw(
        `select customer_id, sum(spend)::text as spend, sum(requests) as requests, sum(prompt) as prompt, sum(completion) as completion
         from (select customer_id, charge_pico as spend, requests, prompt_tokens as prompt, completion_tokens as completion from spend_rollups
               where customer_id in (select jsonb_array_elements_text(?::jsonb)) and hour >= ?
               ${partialHour}) as spend
         group by customer_id`,
        params as never[],
      );
      const sums = new Map((result.rows as Record<string, string>[]).map((row) => [row.customer_id!, row]));
      const rows = ids.map((id) => {
        const row = sums.get(id);
        return { customer_id: id, spend: row?.spend ?? '0', requests: Number(row?.requests ?? 0), prompt: Number(row?.prompt ?? 0), completion: Number(row?.completion ?? 0) };
      });
      await knex.raw(
        `insert into spend_counters (customer_id, scope, period_start, spend_pico, requests, prompt_tokens, completion_tokens, updated_at)
         select customer_id, '', ?, spend, requests, prompt, completion, now()
         from jsonb_to_recordset(?::jsonb) as x(customer_id text, spend bigint, requests bigint, prompt bigint, completion bigint)
         on conflict (customer_id, scope, period_start) do nothing`,
        [startIso, JSON.stringify(rows)],
      );
      // A counter that exists already is the live one: the sum read above misses what other
      // processes have charged but not yet flushed to the ledger, so it may only fill a gap,
      // never overwrite (the ledger's later flushes add to a row inserted here).
      for (const row of rows) await this.ctx.spendBook.seed({ customerId: row.customer_id, scope: OVERALL_SCOPE, periodStartMs: start }, BigInt(row.spend), { onlyIfMissing: true });
    }
  }
}

/** Kept under its old name for the routes; the cursor itself lives in ledger-cursor.ts. */
export const encodeCursor = encodeLedgerCursor;

const HOUR_MS = 3_600_000;
const hourFloor = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
const hourCeil = (ms: number) => Math.ceil(ms / HOUR_MS) * HOUR_MS;

/**
 * The report's SQL: whole hours of [from, to) from the hourly rollups, and raw ledger rows
 * only for the partial hours at either end when `from` or `to` is not on an hour (so a
 * report over whole hours or days never reads the ledger, and any range is exact). Days are
 * days of the gateway's timezone, taken from each hour's start (exact for whole-hour offsets).
 */
export function reportQuery(from: Date, to: Date, groupBy: ReportGroup, customerId: string | null, timezone: string): { sql: string; params: unknown[] } {
  const start = from.getTime();
  const end = to.getTime();
  const wholeFrom = hourCeil(start);
  const wholeTo = hourFloor(end);
  const parts: string[] = [];
  const params: unknown[] = [];
  const customerFilter = customerId ? ' and customer_id = ?' : '';
  // Over all customers by day or model, the per-model rollups (no row per customer) suffice.
  const rollups = customerId || groupBy === 'customer' ? 'spend_rollups' : 'spend_rollups_by_model';
  const customerColumn = rollups === 'spend_rollups' ? 'customer_id' : "'' as customer_id";
  const iso = (ms: number) => new Date(ms).toISOString();
  const raw = (a: number, b: number) => {
    parts.push(`select created_at as at, coalesce(customer_id, '') as customer_id, model, cost_pico as cost, ${CHARGE_SQL} as charge, 1 as requests, prompt_tokens as prompt, completion_tokens as completion
      from spend_ledger where created_at >= ? and created_at < ?${customerFilter}`);
    params.push(iso(a), iso(b), ...(customerId ? [customerId] : []));
  };
  if (wholeFrom >= wholeTo) {
    raw(start, end); // within one hour, or across one hour boundary only
  } else {
    if (start < wholeFrom) raw(start, wholeFrom);
    parts.push(`select hour as at, ${customerColumn}, model, spend_pico as cost, charge_pico as charge, requests, prompt_tokens as prompt, completion_tokens as completion
      from ${rollups} where hour >= ? and hour < ?${customerFilter}`);
    params.push(iso(wholeFrom), iso(wholeTo), ...(customerId ? [customerId] : []));
    if (wholeTo < end) raw(wholeTo, end);
  }
  const keyExpression = {
    customer: 'customer_id',
    model: 'model',
    day: `to_char(date_trunc('day', at at time zone '${timezone.replace(/'/g, "''")}'), 'YYYY-MM-DD')`,
  }[groupBy];
  const sql = `select ${keyExpression} as key, sum(cost)::text as cost, sum(charge)::text as charge, sum(requests) as requests, sum(prompt) as prompt, sum(completion) as completion
    from (${parts.join(' union all ')}) as spend
    group by 1 order by ${groupBy === 'day' ? '1 asc' : 'sum(charge) desc'} limit 1000`;
  return { sql, params };
}
