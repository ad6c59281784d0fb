/**
 * Prepaid credits across processes: one `tollgate control` and three `tollgate proxy`
 * processes sharing PostgreSQL and Redis. 100 concurrent requests against a balance worth
 * about 20 overshoot it by at most one request, and what was consumed is exactly the ledger's
 * charges; a proxy killed with SIGKILL mid-load and restarted leaves consumed == ledger, with
 * nothing consumed twice. Needs `npm run build` (spawns bin/tollgate.js) and Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, MASTER_KEY, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico, picoToDecimalString } from '../src/shared/money';

const SLOW_MODEL = `
  - model_name: slow-mock
    litellm_params:
      model: mock/gpt-3.5-turbo
      mock_latency_ms: 300`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Status and charge (pico-USD) of one request; status 0 when the connection died (a killed proxy). */
async function chat(base: string, user: string): Promise<{ status: number; charge: bigint; remaining: string | null }> {
  try {
    const response = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'slow-mock', user, max_tokens: 5, messages: [{ role: 'user', content: 'what time is it' }] }),
    });
    await response.arrayBuffer();
    const charge = response.headers.get('x-litellm-response-cost');
    return { status: response.status, charge: charge ? dollarsToPico(charge) : 0n, remaining: response.headers.get('x-tollgate-credits-remaining') };
  } catch {
    return { status: 0, charge: 0n, remaining: null };
  }
}

describe('prepaid credits across a control plane and three proxies', () => {
  const prefix = freshRedisPrefix();
  const yaml = testConfigYaml({ models: SLOW_MODEL, extra: 'tollgate:\n  ledger_flush_interval_ms: 100\n' });
  let database: TestDatabase;
  let control: SpawnedGateway;
  let proxies: SpawnedGateway[] = [];
  let env: Record<string, string>;
  const dataDirs = [freshDataDir(), freshDataDir(), freshDataDir()];

  const spawnProxy = (index: number) => spawnGateway({ yaml, dataDir: dataDirs[index]!, env, command: 'proxy', args: ['--control-plane-url', control.url] });

  async function ledger(user: string): Promise<{ rows: number; charges: bigint; credits: bigint; counter: bigint }> {
    const [row] = await queryDatabase<{ rows: string; charges: string; credits: string }>(
      database.url,
      `select count(*)::text as rows, coalesce(sum(charge_pico), 0)::text as charges, coalesce(sum(credit_pico), 0)::text as credits from spend_ledger where customer_id = $1`,
      [user],
    );
    const counter = await queryDatabase<{ spend: string }>(database.url, `select spend_pico::text as spend from spend_counters where customer_id = $1 and scope = 'credits'`, [user]);
    return { rows: Number(row!.rows), charges: BigInt(row!.charges), credits: BigInt(row!.credits), counter: BigInt(counter[0]?.spend ?? '0') };
  }

  /** Waits until every proxy has flushed `expected` rows of `user` to the ledger. */
  async function ledgerWith(user: string, expected: number): Promise<Awaited<ReturnType<typeof ledger>>> {
    let last = await ledger(user);
    for (let i = 0; i < 100 && last.rows < expected; i++) {
      await sleep(100);
      last = await ledger(user);
    }
    return last;
  }

  async function credits(base: string, user: string) {
    const result = await api<{ consumed_exact: string; balance_exact: string; granted: number }>(base, 'GET', `/customer/credits?end_user_id=${user}`);
    expect(result.status).toBe(200);
    return { consumed: dollarsToPico(result.body.consumed_exact), balance: dollarsToPico(result.body.balance_exact) };
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix };
    control = await spawnGateway({ yaml, dataDir: freshDataDir(), env, command: 'control' });
    proxies = await Promise.all([0, 1, 2].map(spawnProxy));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...proxies, control].map((gateway) => gateway?.stop()));
    await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('holds 100 concurrent requests on three proxies to a balance worth ~20, overshooting by at most one request', async () => {
    const [a, b, c] = proxies as [SpawnedGateway, SpawnedGateway, SpawnedGateway];
    expect((await api(a.url, 'POST', '/budget/new', { budget_id: 'resale', price_multiplier: 1.3 })).status).toBe(200);
    expect((await api(b.url, 'POST', '/budget/new', { budget_id: 'resale-prepaid', price_multiplier: 1.3, prepaid: true })).status).toBe(200);
    expect((await api(c.url, 'POST', '/customer/new', { user_id: 'probe', budget_id: 'resale' })).status).toBe(200);
    const probe = await chat(a.url, 'probe');
    expect(probe.status).toBe(200);
    const charge = probe.charge; // the same prompt and cap: every request is charged this
    expect(charge).toBeGreaterThan(0n);

    expect((await api(a.url, 'POST', '/customer/new', { user_id: 'crowd', budget_id: 'resale-prepaid' })).status).toBe(200);
    const granted = charge * 20n + charge / 2n; // worth twenty and a half requests
    const grant = await api(b.url, 'POST', '/customer/credits/grant', { end_user_id: 'crowd', amount: picoToDecimalString(granted), reference: 'crowd-1' });
    expect(grant.status).toBe(201);

    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => chat(proxies[i % 3]!.url, 'crowd')));
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 402)).toEqual([]);
    const served = outcomes.filter((o) => o.status === 200);
    const charged = served.reduce((sum, o) => sum + o.charge, 0n);
    // Admitted while consumed + reserved < granted: 21 requests, the 21st overshooting by half a request.
    expect(served.length).toBe(21);
    expect(charged - granted).toBeLessThan(charge);
    const rows = await ledgerWith('crowd', served.length);
    expect(rows.rows).toBe(served.length);
    expect(rows.charges).toBe(charged);
    expect(rows.credits).toBe(charged);
    expect(rows.counter).toBe(charged);
    for (const gateway of [control, ...proxies]) {
      const view = await credits(gateway.url, 'crowd');
      expect(view.consumed).toBe(charged);
      expect(view.balance).toBe(granted - charged);
      expect(view.balance).toBeGreaterThan(-charge);
    }
    // Every proxy refuses now, naming the balance.
    for (const proxy of proxies) {
      const response = await fetch(`${proxy.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
        body: JSON.stringify({ model: 'slow-mock', user: 'crowd', max_tokens: 5, messages: [{ role: 'user', content: 'what time is it' }] }),
      });
      expect(response.status).toBe(402);
      expect(response.headers.get('x-should-retry')).toBe('false');
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain('credits exhausted: balance $0 remaining of');
    }
  });

  it('after a proxy is killed with SIGKILL mid-load and restarted, consumed equals the ledger and nothing is consumed twice', async () => {
    const [a] = proxies as [SpawnedGateway];
    expect((await api(a.url, 'POST', '/customer/new', { user_id: 'crash', budget_id: 'resale-prepaid' })).status).toBe(200);
    expect((await api(a.url, 'POST', '/customer/credits/grant', { end_user_id: 'crash', amount: 1, reference: 'crash-1' })).status).toBe(201);
    const load = Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        await sleep((i % 20) * 30);
        return chat(proxies[i % 3]!.url, 'crash');
      }),
    );
    await sleep(450);
    await proxies[0]!.kill9();
    const outcomes = await load;
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 0)).toEqual([]);
    expect(outcomes.some((o) => o.status === 0)).toBe(true); // some died with the proxy
    proxies[0] = await spawnProxy(0);
    // After the restart: what the proxies charged is in the ledger once, and consumed is that sum.
    const servedByLive = outcomes.filter((o) => o.status === 200).length;
    const rows = await ledgerWith('crash', servedByLive);
    expect(rows.rows).toBeGreaterThanOrEqual(servedByLive);
    const distinct = await queryDatabase<{ n: string }>(database.url, `select count(distinct request_id)::text as n from spend_ledger where customer_id = 'crash'`);
    expect(Number(distinct[0]!.n)).toBe(rows.rows);
    expect(rows.credits).toBe(rows.charges);
    expect(rows.counter).toBe(rows.credits);
    for (const gateway of [control, ...proxies]) {
      const view = await credits(gateway.url, 'crash');
      expect(view.consumed).toBe(rows.credits);
      expect(view.balance).toBe(dollarsToPico(1) - rows.credits);
    }
    // Reservations of the killed proxy were given back: the balance is spendable to the last request.
    const after = await chat(proxies[0]!.url, 'crash');
    expect(after.status).toBe(200);
    expect(dollarsToPico(after.remaining!)).toBe(dollarsToPico(1) - rows.credits - after.charge);
  });
});
