/**
 * The usage-export outbox SQL on a real PostgreSQL: recording a batch of outcomes reads the
 * batch's rows by key, even when the statistics were taken before a backlog built.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres';
import { mostRowsScanned } from '../../test/support/plans';
import { openDatabase, type Database } from '../store/database';
import { claimDueExports, enqueueExports, recordExportResults, recordExportResultsStatement, type NewExport } from './outbox';

const HOUR = 3_600_000;
const EXPORTER = 'stripe';

function usage(id: string): NewExport {
  return { exporter: EXPORTER, requestId: id, customerId: 'c1', body: `{"id":"${id}"}`, createdAt: new Date(), retryMaxAgeMs: HOUR };
}

describe('usage export outcomes under a backlog the statistics have not seen', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let db: Knex;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await openDatabase({ databaseUrl: testDatabase.url, dataDir: '/tmp' });
    db = database.orm.em.getConnection().getKnex();
    await db.raw(`alter table usage_exports set (autovacuum_enabled = false)`);
  });

  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it('finds each claimed export by its key instead of reading every pending one', async () => {
    await enqueueExports(db, Array.from({ length: 2_000 }, (_, i) => usage(`old-${i}`)));
    const old = await claimDueExports(db, EXPORTER, 2_000, HOUR);
    await recordExportResults(db, old.map((e) => ({ exporter: EXPORTER, requestId: e.requestId, attempts: e.attempts, ok: true, error: null, retryDelayMs: 0 })));
    await db.raw(`analyze usage_exports`);
    await enqueueExports(db, Array.from({ length: 20_000 }, (_, i) => usage(`new-${i}`)));
    const claimed = await claimDueExports(db, EXPORTER, 24, HOUR);
    const outcomes = claimed.map((e) => ({ exporter: EXPORTER, requestId: e.requestId, attempts: e.attempts, ok: true, error: null, retryDelayMs: 0 }));
    expect(await mostRowsScanned(db, recordExportResultsStatement(outcomes), 'usage_exports')).toBeLessThanOrEqual(outcomes.length);
    const recorded = await recordExportResults(db, outcomes);
    expect(recorded.map((r) => r.status)).toEqual(Array(24).fill('delivered'));
  });
});
