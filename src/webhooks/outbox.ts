/**
 * @module The webhook outbox in the database: every SQL statement on `webhook_events` and
 * `webhook_deliveries`. Events are enqueued inside the ledger transaction of the request
 * that caused them (so an event exists if and only if its request is in the ledger); each
 * configured URL gets its own delivery row. Deliveries are claimed with `for update skip
 * locked`, so any number of processes share the outbox without sending a delivery twice;
 * a claim moves `next_attempt_at` forward by a lease, so the attempt of a process killed
 * mid-flight is retried once the lease runs out. Times are the database's `now()`.
 */
import type { Knex } from '@mikro-orm/postgresql';
import type { WebhookEventType } from './payloads';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface OutboxEvent {
  eventId: string;
  eventType: WebhookEventType;
  customerId: string | null;
  /** The exact JSON body to send. */
  body: string;
  createdAt: Date;
}

export interface ClaimedDelivery {
  eventId: string;
  url: string;
  /** This attempt's number (1 for the first). */
  attempts: number;
  body: string;
}

export interface AttemptResult {
  eventId: string;
  url: string;
  attempts: number;
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  /** Delay before the next attempt when this one failed. */
  retryDelayMs: number;
  /** When the attempt started (a claimed delivery may wait in its process's queue first). */
  attemptedAt?: Date;
}

export interface DeliveryRow {
  eventId: string;
  eventType: string;
  customerId: string | null;
  url: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  giveUpAt: Date;
  lastAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: Date | null;
  createdAt: Date;
  body: string;
}

type Queryable = Pick<Knex, 'raw'>;

const MILLISECONDS = `* interval '1 millisecond'`;

/**
 * Outcomes and releases find each delivery by its primary key, one probe per row of the batch.
 * Written with `d.status = 'pending'` and the batch as `jsonb_to_recordset` (which the planner
 * takes for 100 rows), the planner instead scanned every pending delivery and hash-joined the
 * batch against them whenever its statistics said few were pending, and they say so once a
 * backlog builds (statistics trail it: PostgreSQL analyzes after a tenth of a table changed,
 * the embedded store every few minutes). That took 46 ms to record 24 outcomes against 63,000
 * pending on the embedded store (2.6 ms by key), and longer as the backlog grew: delivery fell
 * further behind the more it was behind. So the batch comes as arrays, whose length the planner
 * knows (`unnest`), and the status test is written `coalesce(status, '')` (status is never null)
 * so that no index on status can drive the scan.
 */
const STILL_PENDING = `coalesce(d.status, '') = 'pending'`;

/** Inserts new events and one pending delivery per URL; events already there are skipped. */
export async function enqueueEvents(db: Queryable, events: OutboxEvent[], urls: string[], retryMaxAgeMs: number): Promise<number> {
  if (!events.length || !urls.length) return 0;
  const rows = events.map((event, seq) => ({
    seq,
    event_id: event.eventId,
    event_type: event.eventType,
    customer_id: event.customerId,
    body: event.body,
    created_at: event.createdAt.toISOString(),
  }));
  const result = await db.raw(
    `with new_events as (
       insert into webhook_events (event_id, event_type, customer_id, body, created_at)
       select event_id, event_type, customer_id, body, created_at
       from jsonb_to_recordset(?::jsonb) as x(seq int, event_id text, event_type text, customer_id text, body text, created_at timestamptz)
       order by seq
       on conflict do nothing
       returning event_id, created_at)
     insert into webhook_deliveries (event_id, url, status, attempts, next_attempt_at, give_up_at, created_at)
     -- created_at comes from JavaScript (millisecond precision), so list cursors round-trip exactly.
     select e.event_id, u.url, 'pending', 0, now(), now() + ?::double precision ${MILLISECONDS}, e.created_at
     from new_events e cross join jsonb_array_elements_text(?::jsonb) as u(url)
     on conflict do nothing`,
    [JSON.stringify(rows), retryMaxAgeMs, JSON.stringify(urls)],
  );
  return result.rowCount ?? 0;
}

/**
 * URLs that have pending deliveries (due now or later; `claimDue` takes only the due ones).
 * A skip scan of the (status, url, …) index: one probe per URL. `select distinct url … where
 * status = 'pending'` read every pending row instead, on every claim round: with a backlog of
 * 40k deliveries that was 14 ms per round on PostgreSQL, and on the embedded store (SQL in
 * WASM) it was what held delivery to ~1.4k/s.
 */
export async function pendingUrls(db: Queryable): Promise<string[]> {
  const result = await db.raw(
    `with recursive urls as (
       (select url from webhook_deliveries where status = 'pending' order by url limit 1)
       union all
       select (select d.url from webhook_deliveries d where d.status = 'pending' and d.url > urls.url order by d.url limit 1)
       from urls where urls.url is not null)
     select url from urls where url is not null`,
  );
  return (result.rows as { url: string }[]).map((row) => row.url);
}

/** Claims up to `limit` due deliveries of one URL for an attempt, leasing them for `leaseMs`. */
export async function claimDue(db: Queryable, url: string, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const result = await db.raw(
    `with due as (
       select event_id, url from webhook_deliveries
       where status = 'pending' and url = ? and next_attempt_at <= now()
       order by next_attempt_at
       limit ?
       for update skip locked)
     update webhook_deliveries d
     set attempts = d.attempts + 1, last_attempt_at = now(), next_attempt_at = now() + ?::double precision ${MILLISECONDS}
     from due, webhook_events e
     where d.event_id = due.event_id and d.url = due.url and e.event_id = d.event_id
     returning d.event_id, d.url, d.attempts, e.body`,
    [url, limit, leaseMs],
  );
  return (result.rows as { event_id: string; url: string; attempts: number; body: string }[]).map((row) => ({
    eventId: row.event_id,
    url: row.url,
    attempts: row.attempts,
    body: row.body,
  }));
}

/**
 * Hands claimed deliveries that were never attempted back (a process stopping): due now, their
 * attempt count as before the claim. A claim since taken over by another process is left.
 */
export async function releaseClaims(db: Queryable, deliveries: ClaimedDelivery[]): Promise<number> {
  if (!deliveries.length) return 0;
  const result = await db.raw(
    `update webhook_deliveries d
     set attempts = d.attempts - 1, next_attempt_at = now()
     from unnest(?::text[], ?::text[], ?::int[]) as x(event_id, url, attempts)
     where d.event_id = x.event_id and d.url = x.url and d.attempts = x.attempts and ${STILL_PENDING}`,
    [deliveries.map((d) => d.eventId), deliveries.map((d) => d.url), deliveries.map((d) => d.attempts)],
  );
  return result.rowCount ?? 0;
}

/** An array binding with null elements: pg sends them as NULL (knex's types allow no nulls in arrays). */
const withNulls = (values: (string | number | null)[]): Knex.RawBinding => values as unknown as Knex.RawBinding;

/** recordResults' statement and its bindings (exported for the test that reads its plan). */
export function recordResultsStatement(results: AttemptResult[]): [string, Knex.RawBinding[]] {
  const sql = `update webhook_deliveries d
     set status = case when x.ok then 'delivered' when now() >= d.give_up_at then 'failed' else 'pending' end,
         delivered_at = case when x.ok then now() else null end,
         next_attempt_at = case when x.ok or now() >= d.give_up_at then null
                                else least(now() + x.delay_ms ${MILLISECONDS}, d.give_up_at) end,
         last_status_code = x.status_code,
         last_error = x.error,
         last_attempt_at = coalesce(x.attempted_at, d.last_attempt_at)
     from unnest(?::text[], ?::text[], ?::int[], ?::boolean[], ?::int[], ?::text[], ?::double precision[], ?::timestamptz[])
       as x(event_id, url, attempts, ok, status_code, error, delay_ms, attempted_at)
     where d.event_id = x.event_id and d.url = x.url and d.attempts = x.attempts and ${STILL_PENDING}
     returning d.event_id, d.url, d.status, d.attempts`;
  return [
    sql,
    [
      results.map((r) => r.eventId),
      results.map((r) => r.url),
      results.map((r) => r.attempts),
      results.map((r) => r.ok),
      withNulls(results.map((r) => r.statusCode)),
      withNulls(results.map((r) => r.error)),
      results.map((r) => r.retryDelayMs),
      withNulls(results.map((r) => r.attemptedAt?.toISOString() ?? null)),
    ],
  ];
}

/**
 * Records attempt outcomes in one statement: delivered, or due again after the retry delay
 * (never later than give_up_at), or failed once give_up_at has passed. An outcome whose
 * lease was lost (another process claimed the delivery again) is ignored.
 */
export async function recordResults(db: Queryable, results: AttemptResult[]): Promise<{ eventId: string; url: string; status: DeliveryStatus; attempts: number }[]> {
  if (!results.length) return [];
  const result = await db.raw(...recordResultsStatement(results));
  return (result.rows as { event_id: string; url: string; status: DeliveryStatus; attempts: number }[]).map((row) => ({
    eventId: row.event_id,
    url: row.url,
    status: row.status,
    attempts: row.attempts,
  }));
}

interface RawDeliveryRow {
  event_id: string;
  event_type: string;
  customer_id: string | null;
  url: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date | null;
  give_up_at: Date;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  body: string;
}

const DELIVERY_COLUMNS = `d.event_id, e.event_type, e.customer_id, d.url, d.status, d.attempts, d.next_attempt_at, d.give_up_at,
  d.last_attempt_at, d.last_status_code, d.last_error, d.delivered_at, d.created_at, e.body`;

function toDeliveryRow(row: RawDeliveryRow): DeliveryRow {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    eventId: row.event_id,
    eventType: row.event_type,
    customerId: row.customer_id,
    url: row.url,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: date(row.next_attempt_at),
    giveUpAt: new Date(row.give_up_at),
    lastAttemptAt: date(row.last_attempt_at),
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    deliveredAt: date(row.delivered_at),
    createdAt: new Date(row.created_at),
    body: row.body,
  };
}

export interface DeliveryCursor {
  createdAt: Date;
  eventId: string;
  url: string;
}

/** Deliveries in one status, newest first; `after` continues a previous page. */
export async function listDeliveries(db: Queryable, status: DeliveryStatus, first: number, after: DeliveryCursor | null): Promise<DeliveryRow[]> {
  const bindings: Knex.RawBinding[] = [status];
  let where = `d.status = ?`;
  if (after) {
    where += ` and (d.created_at, d.event_id, d.url) < (?::timestamptz, ?, ?)`;
    bindings.push(after.createdAt.toISOString(), after.eventId, after.url);
  }
  bindings.push(first);
  const result = await db.raw(
    `select ${DELIVERY_COLUMNS}
     from webhook_deliveries d join webhook_events e on e.event_id = d.event_id
     where ${where}
     order by d.created_at desc, d.event_id desc, d.url desc
     limit ?`,
    bindings,
  );
  return (result.rows as RawDeliveryRow[]).map(toDeliveryRow);
}

export async function deliveriesOf(db: Queryable, eventId: string): Promise<DeliveryRow[]> {
  const result = await db.raw(
    `select ${DELIVERY_COLUMNS} from webhook_deliveries d join webhook_events e on e.event_id = d.event_id where d.event_id = ? order by d.url`,
    [eventId],
  );
  return (result.rows as RawDeliveryRow[]).map(toDeliveryRow);
}

/**
 * Makes failed deliveries due now with a fresh retry window: those of one event (optionally
 * one URL of it), or every failed delivery when `eventId` is null. Pending deliveries are
 * left alone: one may be in flight, and a second attempt would send it twice. Returns how
 * many were rescheduled.
 */
export async function retryFailedDeliveries(db: Queryable, eventId: string | null, url: string | null, retryMaxAgeMs: number): Promise<number> {
  const bindings: Knex.RawBinding[] = [retryMaxAgeMs];
  let where = `status = 'failed'`;
  if (eventId !== null) {
    where += ` and event_id = ?`;
    bindings.push(eventId);
  }
  if (url !== null) {
    where += ` and url = ?`;
    bindings.push(url);
  }
  const result = await db.raw(
    `update webhook_deliveries
     set status = 'pending', next_attempt_at = now(), give_up_at = now() + ?::double precision ${MILLISECONDS}
     where ${where}`,
    bindings,
  );
  return result.rowCount ?? 0;
}

/**
 * Deletes delivered deliveries older than the retention, then events with no delivery left.
 * Failed and pending ones are kept. Dedupe does not depend on these rows: a request's events
 * are only enqueued when its ledger row is new, and budget alerts dedupe on budget_alerts.
 */
export async function purgeDelivered(db: Queryable, retentionMs: number): Promise<number> {
  const deleted = await db.raw(`delete from webhook_deliveries where status = 'delivered' and delivered_at < now() - ?::double precision ${MILLISECONDS}`, [retentionMs]);
  await db.raw(
    `delete from webhook_events e
     where e.created_at < now() - ?::double precision ${MILLISECONDS}
       and not exists (select 1 from webhook_deliveries d where d.event_id = e.event_id)`,
    [retentionMs],
  );
  return deleted.rowCount ?? 0;
}
