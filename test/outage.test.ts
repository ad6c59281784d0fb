/**
 * PostgreSQL briefly unreachable: the data plane keeps serving from memory (it never waits on
 * the database), spend stays visible, and the ledger catches up when the database returns:
 * no request lost, none counted twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, openaiClient, startTestGateway, testConfigYaml } from './support/gateway';
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
