/**
 * @module Spend queries: current-period spend (from memory, read-your-writes), ledger rows,
 * period history and reports (from the store, after flushing what is queued), and
 * recomputing a customer's period spend when its budget or period changes.
 */
import { OVERALL_SCOPE } from '../governance/resolver';
import type { Pico } from '../shared/money';
import { GatewayError } from '../shared/errors';
import type { ServiceContext } from './context';
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
  costPico: Pico;
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

export interface SpendReportRow {
  key: string;
  spendPico: Pico;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export type ReportGroup = 'customer' | 'model' | 'day';

export class SpendService {
  constructor(private readonly ctx: ServiceContext) {}

  currentSpend(customerId: string): Promise<Pico> {
    return this.ctx.resolver.currentSpend(customerId);
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
    if (query.after) {
      const [at, id] = decodeCursor(query.after);
      conditions.push('(created_at, request_id) < (?, ?)');
      params.push(at, id);
    }
    const where = conditions.length ? `where ${conditions.join(' and ')}` : '';
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select request_id, customer_id, key_alias, api_key_id, model, provider, endpoint, prompt_tokens, completion_tokens,
              cached_prompt_tokens, cost_pico, cost_source, status, created_at
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

  async report(from: Date, to: Date, groupBy: ReportGroup, customerId?: string | null): Promise<SpendReportRow[]> {
    parseDate('from', from); // in the range the store handles, or a 400 naming the field
    parseDate('to', to);
    if (to.getTime() <= from.getTime()) throw new GatewayError('bad_request', '"to" must be after "from".', 'to');
    await this.ctx.ledger.flush();
    const keyExpression = {
      customer: `coalesce(customer_id, '')`,
      model: 'model',
      day: `to_char(date_trunc('day', created_at at time zone '${this.ctx.config.timezone.replace(/'/g, "''")}'), 'YYYY-MM-DD')`,
    }[groupBy];
    const params: unknown[] = [from.toISOString(), to.toISOString()];
    let filter = '';
    if (customerId) {
      filter = 'and customer_id = ?';
      params.push(customerId);
    }
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select ${keyExpression} as key, sum(cost_pico)::text as spend, count(*) as requests,
              sum(prompt_tokens) as prompt, sum(completion_tokens) as completion
       from spend_ledger where created_at >= ? and created_at < ? ${filter}
       group by 1 order by ${groupBy === 'day' ? '1 asc' : 'sum(cost_pico) desc'} limit 1000`,
      params as never[],
    );
    return (result.rows as Record<string, string>[]).map((row) => ({
      key: row.key!,
      spendPico: BigInt(row.spend ?? '0'),
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
    for (const id of customerIds) {
      const budget = this.ctx.registry.effectiveBudget(this.ctx.registry.customers.get(id));
      const start = this.ctx.resolver.periodOf(budget).start.getTime();
      byStart.set(start, [...(byStart.get(start) ?? []), id]);
    }
    const knex = this.ctx.orm.em.getConnection().getKnex();
    for (const [start, ids] of byStart) {
      const startIso = new Date(start).toISOString();
      const result = await knex.raw(
        `select customer_id, sum(cost_pico)::text as spend, count(*) as requests, sum(prompt_tokens) as prompt, sum(completion_tokens) as completion
         from spend_ledger where customer_id in (select jsonb_array_elements_text(?::jsonb)) and created_at >= ? group by customer_id`,
        [JSON.stringify(ids), startIso],
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
         on conflict (customer_id, scope, period_start) do update set spend_pico = excluded.spend_pico, requests = excluded.requests,
           prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, updated_at = now()`,
        [startIso, JSON.stringify(rows)],
      );
      for (const row of rows) await this.ctx.spendBook.seed({ customerId: row.customer_id, scope: OVERALL_SCOPE, periodStartMs: start }, BigInt(row.spend));
    }
  }
}

export function encodeCursor(createdAt: Date, requestId: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${requestId}`).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const bar = text.indexOf('|');
  if (bar < 0 || Number.isNaN(new Date(text.slice(0, bar)).getTime())) throw new GatewayError('bad_request', 'The "after" cursor is not valid.', 'after');
  return [text.slice(0, bar), text.slice(bar + 1)];
}
