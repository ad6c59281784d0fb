/**
 * Customers across processes (`tollgate control` + two `tollgate proxy`, real PostgreSQL and
 * Redis). A customer created by its first request on a proxy is visible to the control plane
 * at once, and that first request waits on no other process. The proxies keep at most two
 * customers cached (`customer_cache_size: 2`), so blocks and re-tiers made through the API
 * must reach customers a proxy has cached and customers it has not (or has evicted).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, graphql, MASTER_KEY, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

function chat(base: string, user: string) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 }),
    signal: AbortSignal.timeout(30_000),
  });
}

async function chatStatus(base: string, user: string): Promise<{ status: number; cost: bigint; message: string }> {
  const response = await chat(base, user);
  const body = (await response.json()) as { error?: { message: string } };
  const cost = response.headers.get('x-litellm-response-cost');
  return { status: response.status, cost: cost ? dollarsToPico(cost) : 0n, message: body.error?.message ?? '' };
}

describe('customers in split planes', () => {
  const prefix = freshRedisPrefix();
  const yaml = testConfigYaml({ extra: 'tollgate:\n  customer_cache_size: 2\n' });
  let database: TestDatabase;
  let control: SpawnedGateway;
  let proxies: SpawnedGateway[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix };
    control = await spawnGateway({ yaml, dataDir: freshDataDir(), env, command: 'control' });
    proxies = await Promise.all([0, 1].map(() => spawnGateway({ yaml, dataDir: freshDataDir(), env, command: 'proxy', args: ['--control-plane-url', control.url] })));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...proxies, control].map((gateway) => gateway?.stop()));
    await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('shows a customer first seen on a proxy on the control plane at once, and caps it there', async () => {
    const [a, b] = proxies as [SpawnedGateway, SpawnedGateway];
    const first = await chatStatus(a.url, 'first-seen');
    expect(first.status).toBe(200);

    // Straight after the response: no restart, no ledger flush waited for.
    const info = await api<{ user_id: string; spend: number }>(control.url, 'GET', '/customer/info?end_user_id=first-seen');
    expect(info.status).toBe(200);
    expect(info.body.user_id).toBe('first-seen');
    expect(dollarsToPico(info.body.spend)).toBe(first.cost);
    const viaGraphql = await graphql<{ customer: { id: string } | null }>(control.url, '{ customer(id: "first-seen") { id } }');
    expect(viaGraphql.data?.customer).toEqual({ id: 'first-seen' });

    const duplicate = await api<{ error: { message: string } }>(control.url, 'POST', '/customer/new', { user_id: 'first-seen' });
    expect(duplicate.status).toBe(400);
    expect(duplicate.body.error.message).toContain('first-seen');

    // Capped at what it has spent: refused on every proxy from now on.
    const capped = await api(control.url, 'POST', '/customer/update', { user_id: 'first-seen', max_budget: picoToDollars(first.cost) });
    expect(capped.status).toBe(200);
    for (const proxy of [a, b]) {
      const refused = await chatStatus(proxy.url, 'first-seen');
      expect(refused.status).toBe(402);
      expect(refused.message).toContain('Budget has been exceeded');
    }
    const rows = await queryDatabase<{ n: number }>(database.url, `select count(*)::int as n from customers where user_id = 'first-seen'`);
    expect(rows[0]!.n).toBe(1);
  });

  it('answers 10 parallel creations of one id with one 200 and 400s naming the duplicate', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => api<{ error?: { message: string } }>(control.url, 'POST', '/customer/new', { user_id: 'raced', max_budget: 1 })));
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
    const refused = answers.filter((answer) => answer.status !== 200);
    expect(refused.map((answer) => answer.status)).toEqual(Array(9).fill(400));
    for (const answer of refused) expect(answer.body.error!.message).toContain('raced');
  });

  it('serves a new customer\'s first request without waiting on other processes', async () => {
    // The control plane is frozen (SIGSTOP), and a subscriber to the change notices never
    // acknowledges one (a stuck process): a first request that waited on either would hang,
    // or take the 2 s acknowledgement timeout every time.
    const [a, b] = proxies as [SpawnedGateway, SpawnedGateway];
    const silent = new Redis(REDIS_URL);
    await silent.subscribe(`${prefix}invalidate`);
    control.child.kill('SIGSTOP');
    try {
      for (const [index, proxy] of [a, b, a, b].entries()) {
        const started = performance.now();
        const outcome = await chatStatus(proxy.url, `newcomer-${index}`);
        expect(outcome.status).toBe(200);
        expect(performance.now() - started).toBeLessThan(1_900);
      }
    } finally {
      control.child.kill('SIGCONT');
      silent.disconnect();
    }
    const rows = await queryDatabase<{ user_id: string }>(database.url, `select user_id from customers where user_id like 'newcomer-%' order by user_id`);
    expect(rows.map((row) => row.user_id)).toEqual(['newcomer-0', 'newcomer-1', 'newcomer-2', 'newcomer-3']);
  });

  it('applies a block and a re-tier on every proxy at once, whether it has the customer cached or not', async () => {
    const [a, b] = proxies as [SpawnedGateway, SpawnedGateway];
    // cached-one is in a's cache (just served); never-seen has no row and no cache entry.
    expect((await chatStatus(a.url, 'cached-one')).status).toBe(200);
    const blocked = await api(control.url, 'POST', '/customer/block', { user_ids: ['cached-one', 'never-seen'] });
    expect(blocked.status).toBe(200);
    for (const proxy of [a, b]) {
      for (const user of ['cached-one', 'never-seen']) {
        const refused = await chatStatus(proxy.url, user);
        expect(refused.status).toBe(403);
        expect(refused.message).toContain('blocked');
      }
    }
    expect((await api(control.url, 'POST', '/customer/unblock', { user_ids: ['cached-one', 'never-seen'] })).status).toBe(200);
    expect((await chatStatus(a.url, 'cached-one')).status).toBe(200);

    // A closed tier: both customers are refused on both proxies the moment they are moved.
    expect((await api(control.url, 'POST', '/budget/new', { budget_id: 'closed', max_budget: 0 })).status).toBe(200);
    for (const user of ['cached-one', 'never-seen']) {
      expect((await api(control.url, 'POST', '/customer/update', { user_id: user, budget_id: 'closed' })).status).toBe(200);
    }
    for (const proxy of [a, b]) {
      for (const user of ['cached-one', 'never-seen']) expect((await chatStatus(proxy.url, user)).status).toBe(402);
    }
  });

  it('keeps a budget exact and a block enforced while a tiny cache evicts the customer over and over', async () => {
    const [a, b] = proxies as [SpawnedGateway, SpawnedGateway];
    const one = await chatStatus(a.url, 'probe');
    expect(one.status).toBe(200);
    // Room for exactly three requests like the probe.
    expect((await api(control.url, 'POST', '/customer/new', { user_id: 'evicted', max_budget: picoToDollars(one.cost * 3n) })).status).toBe(200);
    expect((await api(control.url, 'POST', '/customer/new', { user_id: 'evicted-blocked', blocked: true })).status).toBe(200);
    const outcomes: number[] = [];
    let spent = 0n;
    for (let round = 0; round < 6; round++) {
      const proxy = round % 2 ? b : a;
      const outcome = await chatStatus(proxy.url, 'evicted');
      outcomes.push(outcome.status);
      spent += outcome.cost;
      expect((await chatStatus(proxy.url, 'evicted-blocked')).status).toBe(403);
      // Two other customers push both out of a cache of two.
      for (const other of [`filler-${round}-x`, `filler-${round}-y`]) expect((await chatStatus(proxy.url, other)).status).toBe(200);
    }
    expect(outcomes).toEqual([200, 200, 200, 402, 402, 402]);
    expect(spent).toBe(one.cost * 3n);
    const info = await api<{ spend: number }>(b.url, 'GET', '/customer/info?end_user_id=evicted');
    expect(dollarsToPico(info.body.spend)).toBe(spent);
  });
});
