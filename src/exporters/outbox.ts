/**
 * @module The export outbox in the database: every SQL statement on `usage_exports`. One row
 * per exporter and metered request, inserted in the ledger transaction of that request (so an
 * export exists if and only if its request is in the ledger, replays from the crash journal
 * included). Rows are claimed with `for update skip locked` and a lease, as the webhook outbox
 * does, so processes share it and a process killed mid-attempt is taken over after the lease.
 * A row whose retry time runs out becomes `failed`: the dead-letter list, retryable.
 */
import type { Knex } from '@mikro-orm/postgresql';

export type ExportStatus = 'pending' | 'delivered' | 'failed';
export const EXPORT_STATUSES: readonly ExportStatus[] = ['pending', 'delivered', 'failed'];

type Queryable = Pick<Knex, 'raw'>;
const MILLISECONDS = `* interval '1 millisecond'`;

export interface NewExport {
  exporter: string;
  requestId: string;
  customerId: string;
  body: string;
  createdAt: Date;
  retryMaxAgeMs: number;
}

export interface ClaimedExport {
  exporter: string;
  requestId: string;
  customerId: string;
  attempts: number;
  body: string;
  /** The customer's current Stripe id (looked up at each attempt, so setting it late works). */
  stripeCustomerId: string | null;
}

export interface ExportResult {
  exporter: string;
  requestId: string;
  attempts: number;
  ok: boolean;
  error: string | null;
  retryDelayMs: number;
}

export interface ExportRow {
  exporter: string;
  requestId: string;
  customerId: string;
  status: ExportStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  giveUpAt: Date;
  lastAttemptAt: Date | null;
  lastError: string | null;
  deliveredAt: Date | null;
  createdAt: Date;
  body: string;
}

export async function enqueueExports(db: Queryable, exports: NewExport[]): Promise<number> {
  if (!exports.length) return 0;
  const rows = exports.map((e) => ({
    exporter: e.exporter,
    request_id: e.requestId,
    customer_id: e.customerId,
    body: e.body,
    created_at: e.createdAt.toISOString(),
    max_age_ms: e.retryMaxAgeMs,
  }));
  const result = await db.raw(
    `insert into usage_exports (exporter, request_id, customer_id, body, status, attempts, next_attempt_at, give_up_at, created_at)
     select exporter, request_id, customer_id, body, 'pending', 0, now(), now() + max_age_ms ${MILLISECONDS}, created_at
     from jsonb_to_recordset(?::jsonb) as x(exporter text, request_id text, customer_id text, body text, created_at timestamptz, max_age_ms double precision)
     on conflict do nothing`,
    [JSON.stringify(rows)],
  );
  return result.rowCount ?? 0;
}

/** Claims up to `limit` due exports of one exporter, leasing them for `leaseMs`. */
export async function claimDueExports(db: Queryable, exporter: string, limit: number, leaseMs: number): Promise<ClaimedExport[]> {
  const result = await db.raw(
    `with due as (
       select exporter, request_id from usage_exports
       where status = 'pending' and exporter = ? and next_attempt_at <= now()
       order by next_attempt_at
       limit ?
       for update skip locked)
     update usage_exports x
     set attempts = x.attempts + 1, last_attempt_at = now(), next_attempt_at = now() + ?::double precision ${MILLISECONDS}
     from due
     where x.exporter = due.exporter and x.request_id = due.request_id
     returning x.exporter, x.request_id, x.customer_id, x.attempts, x.body,
       (select c.stripe_customer_id from customers c where c.user_id = x.customer_id) as stripe_customer_id`,
    [exporter, limit, leaseMs],
  );
  return (result.rows as { exporter: string; request_id: string; customer_id: string; attempts: number; body: string; stripe_customer_id: string | null }[]).map((row) => ({
    exporter: row.exporter,
    requestId: row.request_id,
    customerId: row.customer_id,
    attempts: row.attempts,
    body: row.body,
    stripeCustomerId: row.stripe_customer_id,
  }));
}

/**
 * recordExportResults' statement and bindings (exported for the test that reads its plan). Each
 * export is found by its primary key: the batch comes as arrays, whose length the planner knows,
 * and the status test cannot use an index (see STILL_PENDING in src/webhooks/outbox.ts: with
 * statistics that trail a backlog, the planner otherwise scans every pending row per batch).
 */
export function recordExportResultsStatement(results: ExportResult[]): [string, Knex.RawBinding[]] {
  const sql = `update usage_exports x
     set status = case when r.ok then 'delivered' when now() >= x.give_up_at then 'failed' else 'pending' end,
         delivered_at = case when r.ok then now() else null end,
         next_attempt_at = case when r.ok or now() >= x.give_up_at then null else least(now() + r.delay_ms ${MILLISECONDS}, x.give_up_at) end,
         last_error = r.error
     from unnest(?::text[], ?::text[], ?::int[], ?::boolean[], ?::text[], ?::double precision[]) as r(exporter, request_id, attempts, ok, error, delay_ms)
     where x.exporter = r.exporter and x.request_id = r.request_id and x.attempts = r.attempts and coalesce(x.status, '') = 'pending'
     returning x.exporter, x.request_id, x.status, x.attempts`;
  return [
    sql,
    [
      results.map((r) => r.exporter),
      results.map((r) => r.requestId),
      results.map((r) => r.attempts),
      results.map((r) => r.ok),
      // pg sends null elements as NULL; knex's types allow no nulls in arrays.
      results.map((r) => r.error) as unknown as Knex.RawBinding,
      results.map((r) => r.retryDelayMs),
    ],
  ];
}

/** Records outcomes: delivered, due again after the delay, or failed past give_up_at. A lost lease is ignored. */
export async function recordExportResults(db: Queryable, results: ExportResult[]): Promise<{ exporter: string; requestId: string; status: ExportStatus; attempts: number }[]> {
  if (!results.length) return [];
  const result = await db.raw(...recordExportResultsStatement(results));
  return (result.rows as { exporter: string; request_id: string; status: ExportStatus; attempts: number }[]).map((row) => ({
    exporter: row.exporter,
    requestId: row.request_id,
    status: row.status,
    attempts: row.attempts,
  }));
}

interface RawExportRow {
  exporter: string;
  request_id: string;
  customer_id: string;
  status: ExportStatus;
  attempts: number;
  next_attempt_at: Date | null;
  give_up_at: Date;
  last_attempt_at: Date | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  body: string;
}

function toExportRow(row: RawExportRow): ExportRow {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    exporter: row.exporter,
    requestId: row.request_id,
    customerId: row.customer_id,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: date(row.next_attempt_at),
    giveUpAt: new Date(row.give_up_at),
    lastAttemptAt: date(row.last_attempt_at),
    lastError: row.last_error,
    deliveredAt: date(row.delivered_at),
    createdAt: new Date(row.created_at),
    body: row.body,
  };
}

/** Exports in one status (optionally of one exporter), oldest first; `offset` pages on. */
export async function listExports(db: Queryable, status: ExportStatus, exporter: string | null, limit: number, offset: number): Promise<ExportRow[]> {
  const result = await db.raw(
    `select * from usage_exports where status = ? and (?::text is null or exporter = ?)
     order by created_at, exporter, request_id limit ? offset ?`,
    [status, exporter, exporter, limit, offset],
  );
  return (result.rows as RawExportRow[]).map(toExportRow);
}

/**
 * Makes failed exports due now with a fresh retry window (each exporter's own): of one exporter
 * (or all), of one request (or all). Pending ones are left alone (one may be in flight); rows of
 * an exporter no longer configured (absent from `maxAgeMsByExporter`) stay failed. Returns how many.
 */
export async function retryFailedExports(db: Queryable, exporter: string | null, requestId: string | null, maxAgeMsByExporter: Record<string, number>): Promise<number> {
  const result = await db.raw(
    `update usage_exports x set status = 'pending', next_attempt_at = now(), give_up_at = now() + m.value::double precision ${MILLISECONDS}
     from jsonb_each_text(?::jsonb) m
     where m.key = x.exporter and x.status = 'failed' and (?::text is null or x.exporter = ?) and (?::text is null or x.request_id = ?)`,
    [JSON.stringify(maxAgeMsByExporter), exporter, exporter, requestId, requestId],
  );
  return result.rowCount ?? 0;
}

export interface ExporterBacklog {
  exporter: string;
  pending: number;
  failed: number;
  /** Seconds since the oldest export not yet delivered was created (0 when none). */
  lagSeconds: number;
}

export async function exportBacklog(db: Queryable): Promise<ExporterBacklog[]> {
  const result = await db.raw(
    `select exporter, count(*) filter (where status = 'pending')::int as pending, count(*) filter (where status = 'failed')::int as failed,
       coalesce(extract(epoch from now() - min(created_at)), 0)::double precision as lag_seconds
     from usage_exports where status <> 'delivered' group by exporter`,
  );
  return (result.rows as { exporter: string; pending: number; failed: number; lag_seconds: number }[]).map((row) => ({
    exporter: row.exporter,
    pending: row.pending,
    failed: row.failed,
    lagSeconds: Number(row.lag_seconds),
  }));
}

export async function purgeDeliveredExports(db: Queryable, retentionMs: number): Promise<number> {
  const result = await db.raw(`delete from usage_exports where status = 'delivered' and delivered_at < now() - ?::double precision ${MILLISECONDS}`, [retentionMs]);
  return result.rowCount ?? 0;
}
