/**
 * The embedded store has no autovacuum (PGlite is PostgreSQL in single-user mode): without
 * the gateway's own vacuum, a table whose rows are updated over and over grows by a copy of
 * itself each time, for ever. On a real embedded store, with the vacuum the gateway starts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '@mikro-orm/postgresql';
import { openDatabase, type Database } from './database';
import { until } from '../../test/support/poll';

const ROWS = 2_000;
const UPDATES = 10;

async function tableBytes(db: Knex, table: string): Promise<number> {
  const result = await db.raw(`select pg_table_size(?) as bytes`, [table]);
  return Number((result.rows as { bytes: string }[])[0]!.bytes);
}

async function vacuumStats(db: Knex, table: string): Promise<{ vacuums: number; analyzed: boolean }> {
  const result = await db.raw(`select vacuum_count, last_analyze from pg_stat_user_tables where relname = ?`, [table]);
  const row = (result.rows as { vacuum_count: string; last_analyze: Date | null }[])[0];
  return { vacuums: Number(row?.vacuum_count ?? 0), analyzed: row?.last_analyze != null };
}

describe('embedded store vacuum', () => {
  let dataDir: string;
  let database: Database;
  let db: Knex;
  const errors: unknown[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tollgate-vacuum-'));
    database = await openDatabase({ dataDir, vacuum: { onError: (error) => errors.push(error), options: { intervalMs: 30, analyzeEvery: 1, pauseFactor: 1 } } });
    db = database.orm.em.getConnection().getKnex();
  });

  afterAll(async () => {
    await database?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps a table that is updated over and over at its size, and gives the planner statistics', async () => {
    await db.raw(`create table churn (id int primary key, n int not null, padding text not null)`);
    await db.raw(`insert into churn select g, 0, repeat('x', 200) from generate_series(1, ?) g`, [ROWS]);
    await until('the first vacuum', async () => (await vacuumStats(db, 'churn')).vacuums >= 1, { timeoutMs: 10_000, intervalMs: 20 });
    const initial = await tableBytes(db, 'churn');
    for (let round = 1; round <= UPDATES; round++) {
      const { vacuums } = await vacuumStats(db, 'churn');
      await db.raw(`update churn set n = n + 1`);
      // The store has one connection: the next vacuum to finish ran after this update.
      await until('the next vacuum', async () => (await vacuumStats(db, 'churn')).vacuums >= vacuums + 1, { timeoutMs: 10_000, intervalMs: 20 });
    }
    // Never vacuumed, the table would hold UPDATES + 1 versions of every row.
    expect(await tableBytes(db, 'churn')).toBeLessThanOrEqual(initial * 3);
    expect((await db.raw(`select sum(n)::int as total from churn`)).rows[0].total).toBe(ROWS * UPDATES);
    expect((await vacuumStats(db, 'churn')).analyzed).toBe(true);
    expect(errors).toEqual([]);
  });
});
