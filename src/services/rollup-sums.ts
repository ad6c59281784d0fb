/**
 * @module The one way reports sum spend over a time range: from the rollups, never the raw
 * ledger but for partial hours. [from, to) is cut into
 *   raw ledger rows for the partial hour at either end (none when the ends fall on hours),
 *   hourly rollups for the whole hours outside whole UTC days, and
 *   daily rollups (`spend_rollups_daily`) for the whole UTC days in between,
 * so any range is exact and a report over months reads one row per customer × model × day.
 * The daily grain is used only when the grouping does not split a UTC day: by customer, model
 * or nothing, or by day in a zone that is UTC over the range. Over all customers, when
 * neither a customer filter nor a per-customer grouping needs them, the per-model hourly
 * rollups (a few rows an hour) are read instead.
 */
import { DateTime } from 'luxon';

/**
 * The customer's charge of a ledger row: rows written before charges existed have none, and
 * were charged their cost (the migration backfills them; this keeps any row it missed exact).
 */
export const CHARGE_SQL = 'coalesce(charge_pico, cost_pico)';

export type SumKey = 'customer' | 'model' | 'day' | 'hour' | 'none';

export interface RollupSumOptions {
  customerId?: string | null;
  /** Only these customers (read per customer on the rollups' customer indexes). */
  customerIds?: string[] | null;
  /** IANA zone of `day` and `hour` keys. */
  timezone: string;
  order: 'key' | 'cost' | 'charge';
  /** null: every group (for a caller that wraps the query in another grouping). */
  limit: number | null;
  /**
   * Now, in ms: a range that ends after it reads the hour it ends in from the rollups whole
   * (nothing is written after now, so the rest of that hour holds no rows).
   */
  nowMs?: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const floorTo = (ms: number, unit: number) => Math.floor(ms / unit) * unit;
const ceilTo = (ms: number, unit: number) => Math.ceil(ms / unit) * unit;

/** Whether every instant of [fromMs, toMs] is at offset 0 in `zone` (so its days are UTC days). */
function isUtcOver(zone: string, fromMs: number, toMs: number): boolean {
  if (/^(UTC|Etc\/UTC|Etc\/GMT|GMT|Z|Etc\/Universal|Universal|Etc\/Zulu|Zulu)$/i.test(zone)) return true;
  for (let at = fromMs; at <= toMs; at += DAY_MS / 2) if (DateTime.fromMillis(at, { zone }).offset !== 0) return false;
  return DateTime.fromMillis(toMs, { zone }).offset === 0;
}

/** The SQL (with its bindings) summing cost, charge, credits used, requests and tokens over [from, to) grouped by `keys`. */
export function rollupSumQuery(from: Date, to: Date, keys: SumKey[], options: RollupSumOptions): { sql: string; params: unknown[] } {
  const customerId = options.customerId ?? null;
  const start = from.getTime();
  let end = to.getTime();
  if (options.nowMs !== undefined && end > options.nowMs) end = Math.max(end, ceilTo(end, HOUR_MS));
  const customerIds = options.customerIds ?? null;
  const perCustomer = customerId !== null || customerIds !== null || keys.includes('customer');
  const zone = options.timezone.replace(/'/g, "''");
  const parts: string[] = [];
  const params: unknown[] = [];
  const customerFilter = customerId !== null ? ' and customer_id = ?' : customerIds !== null ? ' and customer_id = any(?::text[])' : '';
  const customerBinding = customerId !== null ? [customerId] : customerIds !== null ? [customerIds] : [];
  const iso = (ms: number) => new Date(ms).toISOString();
  const push = (sql: string, a: number, b: number, bindCustomer = true) => {
    parts.push(sql);
    params.push(iso(a), iso(b), ...(bindCustomer ? customerBinding : []));
  };
  // Requests without a customer are NULL in the ledger, '' in the rollups.
  const anonymous = customerId === '';
  const raw = (a: number, b: number) =>
    push(
      `select created_at as at, coalesce(customer_id, '') as customer_id, model, cost_pico as cost, ${CHARGE_SQL} as charge, credit_pico as credit, 1 as requests, prompt_tokens as prompt, completion_tokens as completion, cached_prompt_tokens as cached
       from spend_ledger where created_at >= ? and created_at < ?${anonymous ? ' and customer_id is null' : customerFilter}`,
      a,
      b,
      !anonymous,
    );
  const rollup = (table: string, time: string, a: number, b: number) =>
    push(
      `select ${time} as at, ${table === 'spend_rollups_by_model' ? "'' as customer_id" : 'customer_id'}, model, spend_pico as cost, charge_pico as charge, credit_pico as credit, requests, prompt_tokens as prompt, completion_tokens as completion, cached_prompt_tokens as cached
       from ${table} where ${time} >= ? and ${time} < ?${customerFilter}`,
      a,
      b,
    );
  const hourly = (a: number, b: number) => rollup(perCustomer ? 'spend_rollups' : 'spend_rollups_by_model', 'hour', a, b);
  const wholeFrom = ceilTo(start, HOUR_MS);
  const wholeTo = floorTo(end, HOUR_MS);
  if (wholeFrom >= wholeTo) {
    raw(start, end); // within one hour, or across one hour boundary only
  } else {
    if (start < wholeFrom) raw(start, wholeFrom);
    const dayFrom = ceilTo(wholeFrom, DAY_MS);
    const dayTo = floorTo(wholeTo, DAY_MS);
    const dayGrain = perCustomer && dayFrom < dayTo && !keys.includes('hour') && (!keys.includes('day') || isUtcOver(options.timezone, dayFrom, dayTo));
    if (dayGrain) {
      if (wholeFrom < dayFrom) hourly(wholeFrom, dayFrom);
      rollup('spend_rollups_daily', 'day', dayFrom, dayTo);
      if (dayTo < wholeTo) hourly(dayTo, wholeTo);
    } else {
      hourly(wholeFrom, wholeTo);
    }
    if (wholeTo < end) raw(wholeTo, end);
  }
  const expression: Record<SumKey, string> = {
    customer: 'customer_id',
    model: 'model',
    day: `to_char(date_trunc('day', at at time zone '${zone}'), 'YYYY-MM-DD')`,
    hour: `to_char(date_trunc('hour', at at time zone '${zone}'), 'YYYY-MM-DD"T"HH24')`,
    none: `''`,
  };
  const selected = keys.map((key, index) => `${expression[key]} as ${index === 0 ? 'key' : `key${index + 1}`}`).join(', ');
  const groups = keys.map((_, index) => String(index + 1)).join(', ');
  const order = options.order === 'key' ? groups.split(', ').map((g) => `${g} asc`).join(', ') : `sum(${options.order}) desc, 1 asc`;
  const sql = `select ${selected}, coalesce(sum(cost), 0)::text as cost, coalesce(sum(charge), 0)::text as charge, coalesce(sum(credit), 0)::text as credits, coalesce(sum(requests), 0) as requests,
      coalesce(sum(prompt), 0) as prompt, coalesce(sum(completion), 0) as completion, coalesce(sum(cached), 0) as cached
    from (${parts.join(' union all ')}) as spend
    group by ${groups} order by ${order}${options.limit === null ? '' : ` limit ${Math.max(1, Math.floor(options.limit))}`}`;
  return { sql, params };
}
