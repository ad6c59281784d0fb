/**
 * PostgreSQL briefly unreachable: the data plane keeps serving from memory (it never waits on
 * the database), spend stays visible, and the ledger catches up when the database returns:
 * no request lost, none counted twice. With fail_mode open a customer first seen during the
 * outage is served, and stored with its charge once the database is back, a kill -9 between
 * the two included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, openaiClient, spawnGateway, startTestGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { until } from './support/poll';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { CuttableTcpProxy } from './support/tcp-proxy';
import { dollarsToPico } from '../src/shared/money';

describe('database outage', () => {
  let database: TestDatabase;
  let proxy: CuttableTcpProxy;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    proxy = await new CuttableTcpProxy('127.0.0.1', 5432).start();
    const viaProxy = database.url.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`);
    gateway = await startTestGateway({ yaml: testConfigYaml({ extra: 'tollgate:\n  ledger_flush_interval_ms: 100\n' }), databaseUrl: viaProxy });
  });
  afterAll(async () => {
    await gateway?.stop();
    await proxy?.stop();
    await database?.drop();
  });

  it('keeps serving and metering while PostgreSQL is down, and catches up after', async () => {
    const client = openaiClient(`${gateway.url}/v1`);
    let expected = 0n;
    const call = async (content: string) => {
      const { response } = await client.chat.completions.create({ model: 'gpt-3.5-turbo', user: 'outage', messages: [{ role: 'user', content }] }).withResponse();
      expected += dollarsToPico(response.headers.get('x-litellm-response-cost')!);
    };
    await call('before the outage');
    await gateway.ledger.flush();

    await proxy.cut();
    for (let i = 0; i < 10; i++) await call(`during the outage ${i}`);
    // Read-your-writes from memory, even with the store unreachable.
    const during = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=outage');
    expect(dollarsToPico(during.body.spend)).toBe(expected);
    await new Promise((resolve) => setTimeout(resolve, 500)); // several failed flush attempts
    expect(gateway.ledger.healthy).toBe(false);
    const readiness = (await (await fetch(`${gateway.url}/health/readiness`)).json()) as { ledger: { healthy: boolean; backlog: number } };
    expect(readiness.ledger).toEqual({ healthy: false, backlog: 10 });

    await proxy.restore();
    await expect.poll(() => gateway.ledger.healthy, { timeout: 20_000, interval: 200 }).toBe(true);
    await gateway.ledger.flush();
    const rows = await queryDatabase<{ n: number; total: string }>(database.url, `select count(*)::int as n, sum(cost_pico)::text as total from spend_ledger where customer_id = 'outage'`);
    expect(rows[0]).toEqual({ n: 11, total: expected.toString() });
    const counter = await queryDatabase<{ spend: string }>(database.url, `select spend_pico::text as spend from spend_counters where customer_id = 'outage' and scope = ''`);
    expect(counter[0]!.spend).toBe(expected.toString());
  });
});

describe('database outage with fail_mode open, a customer first seen while it lasts', () => {
  const dataDir = freshDataDir();
  const yaml = testConfigYaml({ extra: 'tollgate:\n  fail_mode: open\n  ledger_flush_interval_ms: 100\n' });
  let database: TestDatabase;
  let link: CuttableTcpProxy;
  let gateway: SpawnedGateway | null = null;

  beforeAll(async () => {
    database = await createTestDatabase();
    link = await new CuttableTcpProxy('127.0.0.1', 5432).start();
  });
  afterAll(async () => {
    await gateway?.stop();
    await link?.stop();
    await database?.drop();
  });

  it('serves it, and stores it with its charge once the database is back, across a kill -9', async () => {
    const env = { DATABASE_URL: database.url.replace('127.0.0.1:5432', `127.0.0.1:${link.port}`) };
    gateway = await spawnGateway({ yaml, dataDir, env });
    await link.cut();
    const response = await fetch(`${gateway.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
      body: JSON.stringify({ model: 'gpt-3.5-turbo', user: 'first-seen-in-outage', messages: [{ role: 'user', content: 'hello' }] }),
      signal: AbortSignal.timeout(30_000),
    });
    expect(response.status).toBe(200);
    const charged = dollarsToPico(response.headers.get('x-litellm-response-cost')!);
    expect(charged).toBeGreaterThan(0n);
    // Killed before the database came back: the customer and its charge are only in the journal.
    await gateway.kill9();
    await link.restore();
    gateway = await spawnGateway({ yaml, dataDir, env });
    await until('the customer first seen in the outage to be stored', async () => (await queryDatabase(database.url, `select user_id from customers where user_id = 'first-seen-in-outage'`)).length === 1);
    const rows = await queryDatabase<{ n: number; total: string }>(database.url, `select count(*)::int as n, sum(cost_pico)::text as total from spend_ledger where customer_id = 'first-seen-in-outage'`);
    expect(rows[0]).toEqual({ n: 1, total: charged.toString() });
    const info = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=first-seen-in-outage');
    expect(info.status).toBe(200);
    expect(dollarsToPico(info.body.spend)).toBe(charged);
  }, 120_000);
});
