/**
 * The dispatcher against a real PostgreSQL outbox and a real HTTP receiver: a backlog of two
 * URLs' deliveries is sent once each and every outcome recorded, while the statements it takes
 * stay few: the URLs with pending deliveries are looked up when the dispatcher is woken, not
 * on every refill of a queue, and outcomes are written back many at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres';
import { WebhookReceiver } from '../../test/support/webhook-receiver';
import { until } from '../../test/support/poll';
import { openDatabase, type Database } from '../store/database';
import { createLogger } from '../observability/logger';
import { WebhookDispatcher } from './dispatcher';
import { enqueueEvents, type OutboxEvent } from './outbox';
import { WebhookSender } from './sender';
import type { WebhookSettings } from './settings';

const EVENTS = 600;

/** Counts the dispatcher's statements by what they do, passing each to the real database. */
function countingKnex(knex: Knex, counts: Map<string, number>): Knex {
  const kind = (sql: string) =>
    /with recursive urls/.test(sql) ? 'pending urls' : /with due as/.test(sql) ? 'claim' : /set status = case/.test(sql) ? 'outcomes' : 'other';
  return new Proxy(knex, {
    get(target, property, receiver) {
      if (property !== 'raw') return Reflect.get(target, property, receiver) as unknown;
      return (sql: string, ...rest: unknown[]) => {
        counts.set(kind(sql), (counts.get(kind(sql)) ?? 0) + 1);
        return (target.raw as (...args: unknown[]) => unknown)(sql, ...rest);
      };
    },
  });
}

describe('webhook dispatcher', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let receivers: WebhookReceiver[];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await openDatabase({ databaseUrl: testDatabase.url, dataDir: '/tmp' });
    receivers = await Promise.all([new WebhookReceiver().start(), new WebhookReceiver().start()]);
  });

  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
    await Promise.all((receivers ?? []).map((receiver) => receiver.stop()));
  });

  it('sends a backlog once per URL and records every outcome, in few statements', async () => {
    const knex = database.orm.em.getConnection().getKnex();
    const urls = receivers.map((receiver) => receiver.url);
    const events: OutboxEvent[] = Array.from({ length: EVENTS }, (_, i) => ({
      eventId: `evt-${i}`,
      eventType: 'spend_tracked',
      customerId: 'c1',
      body: JSON.stringify({ event: 'spend_tracked', n: i }),
      createdAt: new Date(),
    }));
    expect(await enqueueEvents(knex, events, urls, 3_600_000)).toBe(EVENTS * 2);

    const settings: WebhookSettings = {
      enabled: true,
      urls,
      secret: null,
      sendSpendTracked: true,
      retryMaxAgeMs: 3_600_000,
      initialBackoffMs: 100,
      maxBackoffMs: 1_000,
      timeoutMs: 5_000,
      maxConcurrencyPerUrl: 4,
      // Long enough that no poll runs during the test: only the start looks up the URLs.
      pollIntervalMs: 600_000,
      retentionMs: 3_600_000,
    };
    const counts = new Map<string, number>();
    const dispatcher = new WebhookDispatcher(() => countingKnex(knex, counts), new WebhookSender(settings.timeoutMs, null), settings, createLogger('dispatcher-test'));
    dispatcher.start();
    try {
      await until(
        'every delivery recorded as delivered',
        async () => {
          const result = await knex.raw(`select count(*)::int as n from webhook_deliveries where status = 'delivered'`);
          return (result.rows as { n: number }[])[0].n === EVENTS * 2;
        },
        { timeoutMs: 60_000 },
      );
    } finally {
      await dispatcher.stop();
    }

    for (const receiver of receivers) {
      const ids = receiver.received.map((event) => event.id);
      expect(ids.length).toBe(EVENTS);
      expect(new Set(ids).size).toBe(EVENTS);
    }
    const claims = counts.get('claim') ?? 0;
    // Each claim takes up to 32 deliveries (8 rounds of 4), so a queue is refilled ~40 times here;
    // before, each refill looked every URL up again first.
    expect(claims).toBeGreaterThanOrEqual((EVENTS * 2) / 32);
    expect(counts.get('pending urls')).toBe(1);
    // Outcomes are written every 50 ms or 200 at a time, however fast the receivers answer.
    expect(counts.get('outcomes') ?? 0).toBeLessThan((EVENTS * 2) / 10);
  });
});
