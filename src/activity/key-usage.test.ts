/**
 * When a key was last used stays visible while its batch is being written: a reader between
 * the batch leaving memory and its statement committing saw neither (the console showed
 * "Never" for a key just used). A real PostgreSQL; another connection holds the key's row
 * locked so the batch's update waits mid-flight.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { KeyUsageRecorder } from './key-usage';
import { createLogger } from '../observability/logger';
import { openDatabase, type Database } from '../store/database';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres';
import { until } from '../../test/support/poll';

describe('KeyUsageRecorder', () => {
  let testDatabase: TestDatabase;
  let database: Database;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await openDatabase({ databaseUrl: testDatabase.url, dataDir: '/tmp' });
    await database.orm.em
      .getConnection()
      .getKnex()
      .raw(`insert into api_keys (id, key_hash, key_prefix, scope, created_at) values ('k1', 'hash-1', 'sk-tg-1', 'inference', now())`);
  });

  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it('answers a use while its batch is being written, and the later of two uses', async () => {
    const locker = new Client({ connectionString: testDatabase.url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query(`select id from api_keys where id = 'k1' for update`);
      const recorder = new KeyUsageRecorder(database.orm, createLogger());
      recorder.used('k1', 1_000_000);
      const flushed = recorder.flush();
      // The batch's update is out, waiting on the lock: not in memory's queue, not stored.
      // (Statistics are a snapshot per transaction: cleared before each look.)
      const waiting = async () => (await locker.query('select pg_stat_clear_snapshot()'), await locker.query(`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like 'update api_keys%'`)).rows[0].n;
      await until("the batch's update to wait on the locked row", async () => (await waiting()) > 0, { timeoutMs: 2_000, intervalMs: 10 });
      expect(recorder.pendingUse('k1')).toBe(1_000_000);
      recorder.used('k1', 900_000); // an older time noted meanwhile does not hide the newer one
      expect(recorder.pendingUse('k1')).toBe(1_000_000);
      recorder.used('k1', 2_000_000);
      expect(recorder.pendingUse('k1')).toBe(2_000_000);
      await locker.query('commit');
      await flushed;
      expect(recorder.pendingUse('k1')).toBe(2_000_000); // still queued for the next batch
      const stored = await locker.query(`select last_used_at from api_keys where id = 'k1'`);
      expect((stored.rows[0].last_used_at as Date).getTime()).toBe(1_000_000);
    } finally {
      await locker.end();
    }
  });
});
