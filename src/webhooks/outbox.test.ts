/**
 * The outbox SQL on a real PostgreSQL database: idempotent enqueue, claims that never hand
 * one delivery to two workers, outcomes of a lost lease ignored, give-up, manual retry, purge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres';
import { mostRowsScanned } from '../../test/support/plans';
import { openDatabase, type Database } from '../store/database';
import { claimDue, pendingUrls, enqueueEvents, listDeliveries, purgeDelivered, recordResults, retryFailedDeliveries, recordResultsStatement, type OutboxEvent } from './outbox';

const URLS = ['http://a.example/hook', 'http://b.example/hook'];
const HOUR = 3_600_000;

function event(id: string): OutboxEvent {
  return { eventId: id, eventType: 'spend_tracked', customerId: 'c1', body: `{"id":"${id}"}`, createdAt: new Date() };
}

describe('webhook outbox SQL', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let db: Knex;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await openDatabase({ databaseUrl: testDatabase.url, dataDir: '/tmp' });
    db = database.orm.em.getConnection().getKnex();
  });

  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it('enqueues each event once, with one delivery per URL', async () => {
    expect(await enqueueEvents(db, [event('e1'), event('e2')], URLS, HOUR)).toBe(4);
    expect(await enqueueEvents(db, [event('e1'), event('e3')], URLS, HOUR)).toBe(2);
    expect((await pendingUrls(db)).sort()).toEqual(URLS);
  });

  it('never hands one delivery to two concurrent claims, and ignores the outcome of a lost lease', async () => {
    const [first, second] = await Promise.all([claimDue(db, URLS[0]!, 2, HOUR), claimDue(db, URLS[0]!, 2, HOUR)]);
    const ids = [...first!, ...second!].map((d) => d.eventId);
    expect(ids.sort()).toEqual(['e1', 'e2', 'e3']);
    expect(await claimDue(db, URLS[0]!, 10, HOUR)).toEqual([]); // all leased
    const claimed = [...first!, ...second!];
    const e1 = claimed.find((d) => d.eventId === 'e1')!;
    expect(e1).toMatchObject({ attempts: 1, body: '{"id":"e1"}' });
    // An outcome for an older attempt number (the lease was lost and re-claimed) is ignored.
    expect(await recordResults(db, [{ eventId: 'e1', url: URLS[0]!, attempts: 0, ok: true, statusCode: 200, error: null, retryDelayMs: 0 }])).toEqual([]);
    const recorded = await recordResults(db, [
      { eventId: 'e1', url: URLS[0]!, attempts: 1, ok: true, statusCode: 200, error: null, retryDelayMs: 0 },
      { eventId: 'e2', url: URLS[0]!, attempts: 1, ok: false, statusCode: 503, error: 'receiver answered HTTP 503', retryDelayMs: 0 },
    ]);
    expect(recorded.map((r) => `${r.eventId}:${r.status}`).sort()).toEqual(['e1:delivered', 'e2:pending']);
    expect((await claimDue(db, URLS[0]!, 10, HOUR)).map((d) => [d.eventId, d.attempts])).toEqual([['e2', 2]]);
  });

  it('marks a delivery failed once its retry time is used up, and retries it on request', async () => {
    await enqueueEvents(db, [event('short')], [URLS[0]!], 1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const [claimed] = await claimDue(db, URLS[0]!, 10, HOUR);
    expect(claimed!.eventId).toBe('short');
    const [result] = await recordResults(db, [{ eventId: 'short', url: URLS[0]!, attempts: 1, ok: false, statusCode: null, error: 'ECONNREFUSED', retryDelayMs: 100 }]);
    expect(result!.status).toBe('failed');
    const failed = await listDeliveries(db, 'failed', 10, null);
    expect(failed.map((d) => [d.eventId, d.lastError, d.nextAttemptAt])).toEqual([['short', 'ECONNREFUSED', null]]);
    expect(await retryFailedDeliveries(db, 'short', null, HOUR)).toBe(1);
    expect(await retryFailedDeliveries(db, 'short', null, HOUR)).toBe(0); // now pending, not failed
    expect((await claimDue(db, URLS[0]!, 10, HOUR)).map((d) => [d.eventId, d.attempts])).toEqual([['short', 2]]);
  });

  it('purges delivered events past the retention only', async () => {
    expect(await purgeDelivered(db, HOUR)).toBe(0);
    expect(await purgeDelivered(db, 0)).toBe(1); // e1 → a.example
    const remaining = await db.raw(`select event_id from webhook_events order by event_id`);
    // e1 still has its pending delivery to b.example, so the event stays.
    expect((remaining.rows as { event_id: string }[]).map((r) => r.event_id)).toEqual(['e1', 'e2', 'e3', 'short']);
  });
});

describe('recording outcomes under a backlog the statistics have not seen', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let db: Knex;
  const url = URLS[0]!;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await openDatabase({ databaseUrl: testDatabase.url, dataDir: '/tmp' });
    db = database.orm.em.getConnection().getKnex();
    // The statistics must stay as analyzed below, as they do between two autovacuums.
    await db.raw(`alter table webhook_deliveries set (autovacuum_enabled = false)`);
  });

  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it('finds each claimed delivery by its key instead of reading every pending one', async () => {
    // Analyzed while nothing is pending: 2,000 delivered.
    await enqueueEvents(db, Array.from({ length: 2_000 }, (_, i) => event(`old-${i}`)), [url], HOUR);
    const old = await claimDue(db, url, 2_000, HOUR);
    await recordResults(db, old.map((d) => ({ eventId: d.eventId, url, attempts: d.attempts, ok: true, statusCode: 200, error: null, retryDelayMs: 0 })));
    await db.raw(`analyze webhook_deliveries`);
    // Then a backlog of 20,000 builds, and 24 of them are claimed and sent.
    await enqueueEvents(db, Array.from({ length: 20_000 }, (_, i) => event(`new-${i}`)), [url], HOUR);
    const claimed = await claimDue(db, url, 24, HOUR);
    const outcomes = claimed.map((d) => ({ eventId: d.eventId, url, attempts: d.attempts, ok: true, statusCode: 200, error: null, retryDelayMs: 0 }));
    expect(await mostRowsScanned(db, recordResultsStatement(outcomes), 'webhook_deliveries')).toBeLessThanOrEqual(outcomes.length);
    // And the statement still records them.
    const recorded = await recordResults(db, outcomes);
    expect(recorded.map((r) => r.status)).toEqual(Array(24).fill('delivered'));
  });
});
