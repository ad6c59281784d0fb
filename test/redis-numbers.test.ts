/**
 * Huge numbers through a proxy with Redis counters: an absurd `max_tokens` (2^53, 1e300 …)
 * gets a 400 naming the field, never a 503 "Redis is down" nor, in `fail_mode: open`, an
 * unchecked admission past the rate limits. And a script error in Redis (here: a counter key
 * another program overwrote) is an error for that request and a log line, not an outage:
 * no fail mode, no degraded service.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, MASTER_KEY, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';

function chat(base: string, user: string, limits: Record<string, unknown>) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${MASTER_KEY}` },
    // Raw JSON: 1e300 and 2^53 exactly as a client would write them.
    body: `{"model":"gpt-3.5-turbo","user":${JSON.stringify(user)},"messages":[{"role":"user","content":"hi"}]${Object.entries(limits)
      .map(([field, value]) => `,"${field}":${String(value)}`)
      .join('')}}`,
  });
}

const HUGE = [
  { max_tokens: '9007199254740992' }, // 2^53
  { max_tokens: '1e300' },
  { max_tokens: '6000000000000' },
  { max_completion_tokens: '9007199254740992' },
  { max_completion_tokens: '1000001', max_tokens: '5' },
];

for (const failMode of ['closed', 'open'] as const) {
  describe(`huge numbers and script errors with Redis counters, fail_mode: ${failMode}`, () => {
    const prefix = freshRedisPrefix();
    let gateway: Awaited<ReturnType<typeof startTestGateway>>;
    let database: TestDatabase;
    beforeAll(async () => {
      database = await createTestDatabase();
      gateway = await startTestGateway({
        yaml: testConfigYaml({ extra: `tollgate:\n  fail_mode: ${failMode}\n` }),
        databaseUrl: database.url,
        env: { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix },
      });
    });
    afterAll(async () => {
      await gateway?.stop();
      await deleteRedisKeys(prefix);
      await database?.drop();
    });

    it('refuses an absurd max_tokens with a 400 naming the field, and keeps counting rpm', async () => {
      expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'huge', rpm_limit: 2 })).status).toBe(200);
      for (const limits of HUGE) {
        const response = await chat(gateway.url, 'huge', limits);
        const body = (await response.json()) as { error: { type: string; param: string; message: string } };
        expect(response.status).toBe(400);
        const field = 'max_completion_tokens' in limits ? 'max_completion_tokens' : 'max_tokens';
        expect(body.error).toMatchObject({ type: 'invalid_request_error', param: field });
        expect(body.error.message).toContain(field);
      }
      // The largest cap allowed is counted like any other: rpm_limit 2 admits two of five.
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await chat(gateway.url, 'huge', { max_tokens: '1000000' });
        statuses.push(response.status);
        expect(response.headers.get('x-tollgate-degraded')).toBeNull();
        await response.arrayBuffer();
      }
      expect(statuses).toEqual([200, 200, 429, 429, 429]);
    });

    it('answers a script error with an error for that request, never the fail mode', async () => {
      expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'clobbered', max_budget: 10 })).status).toBe(200);
      const ok = await chat(gateway.url, 'clobbered', { max_tokens: '5' });
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
      // Something else wrote a plain string where the customer's counter hash lives.
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      await redis.set(`${prefix}spend:{clobbered}`, 'not a hash');
      try {
        const refused = await chat(gateway.url, 'clobbered', { max_tokens: '5' });
        expect(refused.status).toBe(500);
        expect(refused.headers.get('x-tollgate-degraded')).toBeNull();
        const body = (await refused.json()) as { error: { type: string; message: string } };
        expect(body.error.type).toBe('internal_error');
        expect(body.error.message).toMatch(/spend counters refused to admit the request of Customer=clobbered.*WRONGTYPE/);
        // Other customers are served as usual: Redis is up.
        const other = await chat(gateway.url, 'someone-else', { max_tokens: '5' });
        expect(other.status).toBe(200);
        expect(other.headers.get('x-tollgate-degraded')).toBeNull();
        await other.arrayBuffer();
      } finally {
        await redis.del(`${prefix}spend:{clobbered}`);
        redis.disconnect();
      }
    });
  });
}
