/**
 * What one governed request costs Redis, counted by Redis itself (INFO commandstats on a
 * private redis-server): one script to admit it (overall budget, model budget and rate limits
 * together) and one to settle it, whatever limits the customer has, plus at most one PUBLISH of
 * live spend events (those of one event-loop turn go in one). README's fleet ceiling is computed
 * from these numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestGateway, testConfigYaml, MASTER_KEY } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { commandCounts, startRedisServer, type PrivateRedis } from './support/redis-server';

const REQUESTS = 20;

function chat(base: string, user: string) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
  });
}

describe('Redis operations per governed request', () => {
  let redis: PrivateRedis;
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    redis = await startRedisServer();
    database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: testConfigYaml(), databaseUrl: database.url, env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await gateway?.stop();
    await redis?.stop();
    await database?.drop();
  });

  it('is one script to admit and one to settle, with a budget, a model budget and rate limits', async () => {
    const created = await api(gateway.url, 'POST', '/budget/new', {
      budget_id: 'governed',
      max_budget: 100,
      rpm_limit: 1000,
      tpm_limit: 1_000_000,
      max_parallel_requests: 50,
      model_max_budget: { 'gpt-3.5-turbo': { max_budget: 50, budget_duration: '1d' } },
    });
    expect(created.status).toBe(200);
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'governed', budget_id: 'governed' })).status).toBe(200);
    const warm = await chat(gateway.url, 'governed'); // loads the scripts (EVAL after NOSCRIPT) once
    expect(warm.status).toBe(200);
    await warm.arrayBuffer();

    const before = await commandCounts(redis.url);
    for (let i = 0; i < REQUESTS; i++) {
      const response = await chat(gateway.url, 'governed');
      expect(response.status).toBe(200);
      expect(response.headers.get('x-ratelimit-end_user-remaining-requests')).not.toBeNull();
      await response.arrayBuffer();
    }
    const after = await commandCounts(redis.url);
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    const scripts = delta('evalsha') + delta('eval');
    expect(scripts / REQUESTS).toBe(2);
    // The live spend events: one at a time here, so one PUBLISH each (never more).
    expect(delta('publish') / REQUESTS).toBe(1);
    // Inside the two scripts Redis runs many cheap hash and sorted-set commands (INFO counts
    // them too): what a request costs the Redis CPU, for README's fleet ceiling.
    const calls = Object.keys(after).filter((name) => !name.startsWith('usec:'));
    const inside = calls.reduce((sum, name) => sum + delta(name), 0) - 1 - scripts - delta('publish'); // minus before's INFO
    const micros = (delta('usec:evalsha') + delta('usec:eval') + delta('usec:publish')) / REQUESTS;
    console.log(
      `per governed request: ${scripts / REQUESTS} scripts, ${delta('publish') / REQUESTS} publish, ${inside / REQUESTS} commands inside the scripts, ` +
        `${micros.toFixed(1)} µs of Redis time (one node: ~${Math.round(1e6 / micros)} governed requests/s)`,
    );
    expect(inside / REQUESTS).toBeLessThan(100);
  });
});
