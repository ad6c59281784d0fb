/**
 * Several real Tollgate processes sharing one PostgreSQL database and one Redis
 * (REDIS_URL): budgets and rate limits are exact across them, and a change made through one
 * process's API applies on the others at once. Needs `npm run build` (spawns bin/tollgate.js)
 * and Redis on 127.0.0.1:6379; every key lives under a fresh prefix, deleted afterwards.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, MASTER_KEY, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { scrape, total } from './support/metrics';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { CuttableTcpProxy } from './support/tcp-proxy';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico, picoToDollars } from '../src/shared/money';


// Slow enough that a burst is in flight on every process at once.
const SLOW_MODEL = `
  - model_name: slow-mock
    litellm_params:
      model: mock/gpt-3.5-turbo
      mock_latency_ms: 300`;

function chat(base: string, user: string, extra: Record<string, unknown> = {}, key = MASTER_KEY) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'slow-mock', user, messages: [{ role: 'user', content: 'what time is it' }], max_tokens: 5, ...extra }),
  });
}

/** Status and cost (pico-USD) of one request, with its body read. */
async function chatOutcome(base: string, user: string, model = 'slow-mock'): Promise<{ status: number; cost: bigint }> {
  const response = await chat(base, user, { model });
  await response.arrayBuffer();
  const cost = response.headers.get('x-litellm-response-cost');
  return { status: response.status, cost: cost ? dollarsToPico(cost) : 0n };
}

async function spendOn(base: string, user: string): Promise<bigint> {
  const info = await api<{ spend: number }>(base, 'GET', `/customer/info?end_user_id=${user}`);
  expect(info.status).toBe(200);
  return dollarsToPico(info.body.spend);
}

describe('three proxies sharing PostgreSQL and Redis', () => {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let gateways: SpawnedGateway[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const yaml = testConfigYaml({ models: SLOW_MODEL });
    const env = { DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix };
    // The first one applies the migrations; the others start against the migrated database.
    gateways = [await spawnGateway({ yaml, dataDir: freshDataDir(), env })];
    gateways.push(...(await Promise.all([1, 2].map(() => spawnGateway({ yaml, dataDir: freshDataDir(), env })))));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()));
    await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('says at start-up that counters are shared through Redis', () => {
    for (const gateway of gateways) expect(gateway.output()).toContain('"sharedCounters":"redis"');
  });

  it('holds a 40-request burst split across the proxies to the budget, and every proxy reports the same spend as the ledger', async () => {
    const [a] = gateways;
    const probe = await chatOutcome(a!.url, 'burst-probe');
    expect(probe.status).toBe(200);
    const cost = probe.cost;
    expect(cost).toBeGreaterThan(0n);
    const maxBudget = cost * 10n;
    expect((await api(a!.url, 'POST', '/customer/new', { user_id: 'burst', max_budget: picoToDollars(maxBudget) })).status).toBe(200);

    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => chatOutcome(gateways[i % gateways.length]!.url, 'burst')));
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 402)).toEqual([]);
    const admitted = outcomes.filter((o) => o.status === 200);
    // max_tokens makes each reservation exact, so exactly the ten the budget affords get in,
    // although no single process saw more than fourteen of the forty.
    expect(admitted).toHaveLength(10);
    const charged = admitted.reduce((sum, o) => sum + o.cost, 0n);
    expect(charged).toBe(cost * 10n);
    expect(charged <= maxBudget + cost).toBe(true);
    for (const gateway of gateways) expect(await spendOn(gateway.url, 'burst')).toBe(charged);

    // Each process flushes its own ledger rows; once all are in, they add up to the same spend.
    let rows: { n: number; total: string | null }[] = [];
    for (let attempt = 0; attempt < 100; attempt++) {
      rows = await queryDatabase(database.url, `select count(*)::int as n, sum(cost_pico)::text as total from spend_ledger where customer_id = 'burst'`);
      if (rows[0]!.n >= admitted.length) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rows[0]!.n).toBe(10);
    expect(BigInt(rows[0]!.total!)).toBe(charged);
  });

  it('reports in /metrics only what each process metered itself, so the scrapes add up to what the responses cost', async () => {
    const totals = async () => {
      let spend = 0;
      let requests = 0;
      for (const gateway of gateways) {
        const samples = await scrape(gateway.url);
        spend += total(samples, 'tollgate_spend_usd_total', { model: 'slow-mock' });
        requests += total(samples, 'tollgate_requests_total', { model: 'slow-mock', status: '200' });
      }
      return { spend, requests };
    };
    const before = await totals();
    const outcomes = await Promise.all(Array.from({ length: 9 }, (_, i) => chatOutcome(gateways[i % gateways.length]!.url, 'scraped')));
    expect(outcomes.every((o) => o.status === 200)).toBe(true);
    const charged = outcomes.reduce((sum, o) => sum + o.cost, 0n);
    const after = await totals();
    // Spend events are relayed to every process for live subscriptions; counted once all the same.
    expect(after.requests - before.requests).toBe(9);
    expect(after.spend - before.spend).toBeCloseTo(picoToDollars(charged), 12);
  });

  it('admits exactly rpm_limit requests split across the proxies', async () => {
    const [a] = gateways;
    expect((await api(a!.url, 'POST', '/customer/new', { user_id: 'paced', rpm_limit: 5 })).status).toBe(200);
    const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => chatOutcome(gateways[i % gateways.length]!.url, 'paced')));
    expect(outcomes.filter((o) => o.status === 200)).toHaveLength(5);
    expect(outcomes.filter((o) => o.status === 429)).toHaveLength(5);
  });

  it('refuses a customer blocked through one proxy on the others right away, and admits it once unblocked', async () => {
    const [a, b, c] = gateways;
    expect((await chatOutcome(b!.url, 'blocky')).status).toBe(200); // b now knows the customer
    expect((await api(a!.url, 'POST', '/customer/block', { user_ids: ['blocky'] })).status).toBe(200);
    const refused = await chat(b!.url, 'blocky');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { type: 'customer_blocked' } });
    expect((await chatOutcome(c!.url, 'blocky')).status).toBe(403);
    expect((await api(a!.url, 'POST', '/customer/unblock', { user_ids: ['blocky'] })).status).toBe(200);
    expect((await chatOutcome(b!.url, 'blocky')).status).toBe(200);
  });

  it('applies a budget created and changed through one proxy on the others', async () => {
    const [a, b] = gateways;
    expect((await api(a!.url, 'POST', '/budget/new', { budget_id: 'closed-tier', max_budget: 0 })).status).toBe(200);
    expect((await api(a!.url, 'POST', '/customer/new', { user_id: 'tiered', budget_id: 'closed-tier' })).status).toBe(200);
    const refused = await chat(b!.url, 'tiered');
    expect(refused.status).toBe(402);
    expect(await refused.json()).toMatchObject({ error: { type: 'budget_exceeded' } });
    expect((await api(a!.url, 'POST', '/budget/update', { budget_id: 'closed-tier', max_budget: 100 })).status).toBe(200);
    expect((await chatOutcome(b!.url, 'tiered')).status).toBe(200);
    const info = await api<{ budget_id: string; max_budget: number }>(b!.url, 'GET', '/customer/info?end_user_id=tiered');
    expect(info.body).toMatchObject({ budget_id: 'closed-tier' });
  });

  it('refuses a key revoked through one proxy on the others', async () => {
    const [a, b] = gateways;
    const generated = await api<{ key: string }>(a!.url, 'POST', '/key/generate', { key_alias: 'shared-key' });
    expect(generated.status).toBe(200);
    expect((await chat(b!.url, 'keyed', {}, generated.body.key)).status).toBe(200);
    expect((await api(a!.url, 'POST', '/key/delete', { keys: [generated.body.key] })).status).toBe(200);
    expect((await chat(b!.url, 'keyed', {}, generated.body.key)).status).toBe(401);
  });
});

describe('a proxy killed mid-request, with Redis counters', () => {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let survivor: SpawnedGateway;
  let doomed: SpawnedGateway;

  beforeAll(async () => {
    database = await createTestDatabase();
    // A 5 s lease instead of 15 min, and a model slow enough to kill a proxy in the middle.
    const yaml = testConfigYaml({
      models: `
  - model_name: crawl-mock
    litellm_params:
      model: mock/gpt-3.5-turbo
      mock_latency_ms: 4000`,
      extra: 'tollgate:\n  reservation_lease_seconds: 5\n',
    });
    const env = { DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix };
    survivor = await spawnGateway({ yaml, dataDir: freshDataDir(), env });
    doomed = await spawnGateway({ yaml, dataDir: freshDataDir(), env });
  }, 120_000);

  afterAll(async () => {
    await survivor?.stop();
    await doomed?.kill9().catch(() => undefined);
    await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('gives back the reservation of a proxy killed mid-request once its lease runs out, and charges nothing for it', async () => {
    // Any max_budget at or below one request's reservation admits one request at a time.
    expect((await api(survivor.url, 'POST', '/customer/new', { user_id: 'orphaned', max_budget: 0.0000001 })).status).toBe(200);
    const request = (base: string) => chat(base, 'orphaned', { model: 'crawl-mock' });
    const inFlight = request(doomed.url).catch(() => null); // admitted, then its proxy dies
    // Killed only once its reservation is in Redis (as the lease of its request).
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    await expect.poll(() => redis.zcard(`${prefix}leases:{orphaned}`), { timeout: 10_000, interval: 20 }).toBe(1);
    redis.disconnect();
    await doomed.kill9();
    await inFlight;

    const refused = await request(survivor.url);
    expect(refused.status).toBe(402); // the dead proxy's reservation still counts
    expect(await refused.json()).toMatchObject({ error: { type: 'budget_exceeded', message: expect.stringContaining('reserved by requests in flight') } });

    await new Promise((resolve) => setTimeout(resolve, 5_500)); // the lease runs out
    const admitted = await request(survivor.url);
    expect(admitted.status).toBe(200);
    const cost = dollarsToPico(admitted.headers.get('x-litellm-response-cost')!);
    await admitted.arrayBuffer();
    expect(await spendOn(survivor.url, 'orphaned')).toBe(cost); // the killed request is not charged
  });
});

describe.each([
  ['still only in its crash journal', 600_000],
  ['already committed to PostgreSQL', 100],
])('a proxy killed while its Redis counter updates were pending and its ledger rows %s', (_, flushIntervalMs) => {
  const prefix = freshRedisPrefix();
  const dataDir = freshDataDir();
  let database: TestDatabase;
  let redisLink: CuttableTcpProxy;
  let reader: SpawnedGateway;
  let victim: SpawnedGateway | null = null;
  // The victim reaches Redis through a link the test can cut and serves while it is cut
  // (fail_mode open). With a 10-minute flush interval all it metered stays in its journal;
  // with 100 ms its rows reach PostgreSQL, and the journal must still keep them for Redis.
  const yaml = testConfigYaml({ extra: `tollgate:\n  fail_mode: open\n  ledger_flush_interval_ms: ${flushIntervalMs}\n` });
  const victimEnv = () => ({ DATABASE_URL: database.url, REDIS_URL: `redis://127.0.0.1:${redisLink.port}`, TOLLGATE_REDIS_PREFIX: prefix });

  beforeAll(async () => {
    database = await createTestDatabase();
    const target = new URL(REDIS_URL);
    redisLink = await new CuttableTcpProxy(target.hostname, Number(target.port || 6379)).start();
    reader = await spawnGateway({ yaml, dataDir: freshDataDir(), env: { DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } });
  }, 120_000);

  afterAll(async () => {
    await reader?.stop();
    await victim?.stop();
    await redisLink?.stop();
    await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('counts in Redis, once, what its crash journal recovers', async () => {
    victim = await spawnGateway({ yaml, dataDir, env: victimEnv() });
    expect((await api(reader.url, 'POST', '/customer/new', { user_id: 'journaled', max_budget: 100 })).status).toBe(200);
    let charged = 0n;
    const served = async () => {
      const outcome = await chatOutcome(victim!.url, 'journaled', 'gpt-3.5-turbo');
      expect(outcome.status).toBe(200);
      charged += outcome.cost;
    };
    for (let i = 0; i < 3; i++) await served(); // counted in Redis at once
    await redisLink.cut();
    for (let i = 0; i < 3; i++) await served(); // not counted in Redis: it is away
    if (flushIntervalMs < 1000) {
      const flushed = async () => (await queryDatabase<{ n: number }>(database.url, `select count(*)::int as n from spend_ledger where customer_id = 'journaled'`))[0]!.n;
      await expect.poll(flushed, { timeout: 10_000, interval: 50 }).toBe(6);
    }
    await victim.kill9(); // with those three counter updates still queued in memory
    await redisLink.restore();

    victim = await spawnGateway({ yaml, dataDir, env: victimEnv() });
    expect(victim.output()).toContain('recovered metered requests from the crash journal');
    // Read through the other process: the shared counter has all six, the first three once.
    expect(await spendOn(reader.url, 'journaled')).toBe(charged);
    const rows = await queryDatabase<{ n: number; total: string }>(database.url, `select count(*)::int as n, sum(cost_pico)::text as total from spend_ledger where customer_id = 'journaled'`);
    expect(rows[0]).toEqual({ n: 6, total: charged.toString() });
  });
});
