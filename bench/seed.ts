/**
 * @module Seeds a store with N customers before Tollgate starts on it, with one SQL statement
 * (as the API would have written them), so the benchmark measures a gateway that has a real
 * customer base, not an empty one. PostgreSQL through `pg`; the embedded store by opening its
 * PGlite data dir directly (no gateway runs on it yet).
 */
import { join } from 'node:path';
import { Client } from 'pg';

const INSERT_CUSTOMERS = `insert into customers (user_id, blocked, created_at, updated_at)
  select 'seeded-customer-' || g, false, now(), now() from generate_series(1, $1::int) g
  on conflict do nothing`;

/**
 * Run after the bulk insert, as any bulk load ends (on PostgreSQL followed by a checkpoint):
 * otherwise autovacuum's analyze of 100k fresh rows, and the checkpoint that writes them out,
 * land in the middle of the measured cells.
 */
const SETTLE_BULK_LOAD = 'vacuum analyze';

export async function seedPostgres(databaseUrl: string, customers: number): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(INSERT_CUSTOMERS, [customers]);
    await client.query(SETTLE_BULK_LOAD);
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

export async function seedEmbedded(dataDir: string, customers: number): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  // The customers' trigram indexes need the extension loaded, as the gateway's own store does.
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  const db = await PGlite.create({ dataDir: join(dataDir, 'pgdata'), extensions: { pg_trgm } });
  try {
    await db.query(INSERT_CUSTOMERS, [customers]);
    await db.query(SETTLE_BULK_LOAD);
  } finally {
    await db.close();
  }
}

/** A fresh database on the PostgreSQL server that `adminUrl` reaches; returns its URL. */
export async function createBenchDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tollgate_bench_${Date.now()}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: adminUrl.replace(/\/[^/]*$/, `/${name}`),
    drop: async () => {
      const client = new Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}
