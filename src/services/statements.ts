/**
 * @module Monthly statements: a customer's ledger for one calendar month (in the gateway's time
 * zone), by day and model: requests, tokens, provider cost, customer charge and the credits it used, with totals —
 * what a reseller attaches to an invoice. Amounts are exact decimal strings of dollars, so a
 * statement sums to the ledger to the last pico-dollar; CSV is the same lines.
 */
import { DateTime } from 'luxon';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString, type Pico } from '../shared/money';
import type { ServiceContext } from './context';
import { rollupSumQuery } from './rollup-sums';
import { invalid } from './validation';

export interface StatementLine {
  day: string;
  model: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  costPico: Pico;
  chargePico: Pico;
  /** The part of the charge paid from prepaid credits. */
  creditsPico: Pico;
}

export interface Statement {
  customerId: string;
  period: string;
  from: Date;
  to: Date;
  timezone: string;
  lines: StatementLine[];
  totals: Omit<StatementLine, 'day' | 'model'>;
}

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

export class StatementService {
  constructor(private readonly ctx: ServiceContext) {}

  async monthly(customerId: unknown, period: unknown): Promise<Statement> {
    if (typeof customerId !== 'string' || !customerId) throw invalid('end_user_id', 'query parameter is required');
    if (typeof period !== 'string' || !PERIOD.test(period)) throw invalid('period', `expected a month as YYYY-MM, got ${JSON.stringify(period ?? null)}`);
    // The cache, else one indexed read: a customer this process has not served yet has a statement too.
    if (!(await this.ctx.registry.customers.find(customerId))) throw new GatewayError('not_found', `End User Id=${customerId} does not exist in db`, 'end_user_id');
    const [, year, month] = PERIOD.exec(period)!;
    const timezone = this.ctx.config.timezone;
    const start = DateTime.fromObject({ year: Number(year), month: Number(month), day: 1 }, { zone: timezone });
    const from = start.toJSDate();
    const to = start.plus({ months: 1 }).toJSDate();
    await this.ctx.ledger.flush();
    // From the rollups (daily in a UTC gateway, else hourly), raw rows for no whole hour.
    const { sql, params } = rollupSumQuery(from, to, ['day', 'model'], { customerId, timezone, order: 'key', limit: null, nowMs: Date.now() });
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(sql, params as never[]);
    const lines: StatementLine[] = (result.rows as Record<string, string>[]).map((row) => ({
      day: row.key!,
      model: row.key2!,
      requests: Number(row.requests),
      promptTokens: Number(row.prompt),
      completionTokens: Number(row.completion),
      cachedPromptTokens: Number(row.cached),
      costPico: BigInt(row.cost!),
      chargePico: BigInt(row.charge!),
      creditsPico: BigInt(row.credits ?? '0'),
    }));
    const totals = lines.reduce(
      (sum, line) => ({
        requests: sum.requests + line.requests,
        promptTokens: sum.promptTokens + line.promptTokens,
        completionTokens: sum.completionTokens + line.completionTokens,
        cachedPromptTokens: sum.cachedPromptTokens + line.cachedPromptTokens,
        costPico: sum.costPico + line.costPico,
        chargePico: sum.chargePico + line.chargePico,
        creditsPico: sum.creditsPico + line.creditsPico,
      }),
      { requests: 0, promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0, costPico: 0n, chargePico: 0n, creditsPico: 0n },
    );
    return { customerId, period, from, to, timezone, lines, totals };
  }
}

const CSV_COLUMNS = ['day', 'model', 'requests', 'prompt_tokens', 'completion_tokens', 'cached_prompt_tokens', 'cost_usd', 'charge_usd', 'credits_used_usd'];

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function lineValues(day: string, model: string, line: Omit<StatementLine, 'day' | 'model'>): (string | number)[] {
  return [day, model, line.requests, line.promptTokens, line.completionTokens, line.cachedPromptTokens, picoToDecimalString(line.costPico), picoToDecimalString(line.chargePico), picoToDecimalString(line.creditsPico)];
}

/** The statement as CSV: one row per day and model, then a `total` row. */
export function statementCsv(statement: Statement): string {
  const rows = [CSV_COLUMNS, ...statement.lines.map((line) => lineValues(line.day, line.model, line)), lineValues('total', '', statement.totals)];
  return rows.map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** The statement as JSON (snake_case; amounts as exact decimal strings of dollars). */
export function statementJson(statement: Statement) {
  const amounts = (line: Omit<StatementLine, 'day' | 'model'>) => ({
    requests: line.requests,
    prompt_tokens: line.promptTokens,
    completion_tokens: line.completionTokens,
    cached_prompt_tokens: line.cachedPromptTokens,
    cost: picoToDecimalString(line.costPico),
    charge: picoToDecimalString(line.chargePico),
    margin: picoToDecimalString(line.chargePico - line.costPico),
    credits_used: picoToDecimalString(line.creditsPico),
  });
  return {
    end_user_id: statement.customerId,
    period: statement.period,
    from: statement.from.toISOString(),
    to: statement.to.toISOString(),
    timezone: statement.timezone,
    currency: 'USD',
    lines: statement.lines.map((line) => ({ day: line.day, model: line.model, ...amounts(line) })),
    totals: amounts(statement.totals),
  };
}
