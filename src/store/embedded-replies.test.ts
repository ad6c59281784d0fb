/**
 * The embedded store's thread listens on a Unix socket in a private directory (removed when
 * the store closes) and answers each query in one socket write (its replies are corked
 * per incoming chunk, embedded-postgres-worker.ts), and holding them back never holds up a
 * query: not one that waits behind another connection's transaction, not a large result.
 * Driven with the `pg` client over the store's real wire protocol.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openDatabase, type Database } from './database';

describe('embedded store replies', () => {
  let dataDir: string;
  let database: Database;
  let url: string;
  const clients: pg.Client[] = [];

  async function connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    clients.push(client);
    return client;
  }

  /** The chunks the client's socket receives: one per write in the store's thread. */
  function countChunks(client: pg.Client): { count: number } {
    const counter = { count: 0 };
    const stream = (client as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream;
    stream.on('data', () => counter.count++);
    return counter;
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tollgate-replies-'));
    database = await openDatabase({ dataDir });
    url = database.orm.config.get('clientUrl')!;
  });

  afterAll(async () => {
    for (const client of clients) await client.end().catch(() => undefined);
    await database?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('listens on a Unix socket in a directory only this user can enter', () => {
    const socketDir = decodeURIComponent(new URL(url).hostname);
    expect(socketDir.startsWith(tmpdir())).toBe(true);
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(socketDir, '.s.PGSQL.5432')).isSocket()).toBe(true);
  });

  it('answers a parameterised query in one write, not one per reply message', async () => {
    const client = await connect();
    await client.query('select 1');
    const chunks = countChunks(client);
    const queries = 40;
    for (let i = 0; i < queries; i++) {
      // Parse, Bind, Describe, Execute, Sync: five reply messages before ReadyForQuery.
      const result = await client.query('select $1::int as n, $2::text as s', [i, `row ${i}`]);
      expect(result.rows).toEqual([{ n: i, s: `row ${i}` }]);
    }
    // One chunk a query (121 for these 40 without the cork); a few spare for a rare split read.
    expect(chunks.count).toBeLessThanOrEqual(queries + 3);
  });

  it('still answers a query that waits behind another connection’s transaction', async () => {
    const holder = await connect();
    const waiter = await connect();
    await holder.query('create table if not exists replies_wait (id int primary key)');
    await holder.query('begin');
    await holder.query('insert into replies_wait values (1)');
    let answered = false;
    const waiting = waiter.query('select count(*)::int as n from replies_wait').then((result) => {
      answered = true;
      return result.rows[0] as { n: number };
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answered).toBe(false); // PGlite runs one session: the query waits for the transaction
    await holder.query('commit');
    await expect(waiting).resolves.toEqual({ n: 1 });
  });

  it('delivers a result larger than a socket buffer whole', async () => {
    const client = clients[0]!; // the store takes four connections, the gateway's pool holds one
    const result = await client.query(`select i, repeat('x', 1000) as pad from generate_series(1, 2000) as i`);
    expect(result.rows).toHaveLength(2000);
    expect(result.rows[1999]).toEqual({ i: 2000, pad: 'x'.repeat(1000) });
  });
});

describe('embedded store socket directory', () => {
  it('is removed when the store closes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-replies-'));
    const database = await openDatabase({ dataDir });
    const socketDir = decodeURIComponent(new URL(database.orm.config.get('clientUrl')!).hostname);
    expect(existsSync(socketDir)).toBe(true);
    await database.close();
    expect(existsSync(socketDir)).toBe(false);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('left behind by a process killed with SIGKILL is removed by the next start, and a live one kept', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // has exited: its pid is free
    const leftBehind = join(tmpdir(), `tollgate-pg-${dead}-left`);
    mkdirSync(leftBehind);
    writeFileSync(join(leftBehind, '.s.PGSQL.5432'), '');
    const live = mkdtempSync(join(tmpdir(), `tollgate-pg-${process.pid}-`));
    const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-replies-'));
    const database = await openDatabase({ dataDir });
    expect(existsSync(leftBehind)).toBe(false);
    expect(existsSync(live)).toBe(true);
    await database.close();
    rmSync(live, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });
});
