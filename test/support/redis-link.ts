/**
 * A gateway whose Redis connection goes through a TCP proxy the test can cut, restore, stall
 * and resume, with its own PostgreSQL database and Redis key prefix: the harness of the Redis
 * outage tests. Registered in the calling describe; the getters read what beforeAll set up.
 */
import { afterAll, beforeAll } from 'vitest';
import { MASTER_KEY, startTestGateway, testConfigYaml } from './gateway';
import { createTestDatabase, type TestDatabase } from './postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './redis';
import { CuttableTcpProxy } from './tcp-proxy';

/** A mock model slow enough for a request to be in flight when the link fails. */
export const SLOW_MODEL = `
  - model_name: slow-mock
    litellm_params:
      model: mock/gpt-3.5-turbo
      mock_latency_ms: 800`;

export function chat(base: string, user: string, extra: Record<string, unknown> = {}) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'slow-mock', user, messages: [{ role: 'user', content: 'what time is it' }], max_tokens: 5, ...extra }),
  });
}

export function gatewayBehindRedisLink(extraYaml = '') {
  const prefix = freshRedisPrefix();
  const target = new URL(REDIS_URL);
  let redisProxy: CuttableTcpProxy;
  let testDatabase: TestDatabase;
  let running: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    redisProxy = await new CuttableTcpProxy(target.hostname, Number(target.port || 6379)).start();
    testDatabase = await createTestDatabase();
    running = await startTestGateway({
      yaml: testConfigYaml({ models: SLOW_MODEL, extra: extraYaml }),
      databaseUrl: testDatabase.url,
      env: { REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`, TOLLGATE_REDIS_PREFIX: prefix },
    });
  });
  afterAll(async () => {
    await running?.stop();
    await redisProxy?.stop();
    await deleteRedisKeys(prefix);
    await testDatabase?.drop();
  });
  return {
    prefix,
    get proxy() {
      return redisProxy;
    },
    get gateway() {
      return running;
    },
    get database() {
      return testDatabase;
    },
  };
}
