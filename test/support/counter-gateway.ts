/**
 * A gateway on its own PostgreSQL database, with a mock upstream behind `upstream-gpt`, and
 * either counter store (in-process or Redis under a fresh prefix): for tests that run the same
 * case on both. `restart()` stops it and starts it again on the same data dir and database with
 * its counters gone (the in-process book starts empty; Redis's keys are deleted), so what it
 * then reports is read back from the store.
 */
import { afterAll, beforeAll } from 'vitest';
import { api, startTestGateway, testConfigYaml } from './gateway';
import { MockUpstream } from './mock-upstream';
import { createTestDatabase, type TestDatabase } from './postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './redis';
import { dollarsToPico } from '../../src/shared/money';

export type CounterStore = 'in-process' | 'redis';

export function gatewayWithCounters(counters: CounterStore) {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let upstream: MockUpstream;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  const env = (): Record<string, string> => (counters === 'redis' ? { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } : {});
  const yaml = () => testConfigYaml({ upstreamBase: upstream.baseUrl });

  beforeAll(async () => {
    database = await createTestDatabase();
    upstream = await new MockUpstream().start();
    gateway = await startTestGateway({ yaml: yaml(), databaseUrl: database.url, env: env() });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
    if (counters === 'redis') await deleteRedisKeys(prefix);
    await database?.drop();
  });

  return {
    get gateway() {
      return gateway;
    },
    get upstream() {
      return upstream;
    },
    get database() {
      return database;
    },
    /** The customer's spend in its current period, as `/customer/info` reports it (pico-USD). */
    async spendOf(user: string): Promise<bigint> {
      return dollarsToPico((await api<{ spend: number }>(gateway.url, 'GET', `/customer/info?end_user_id=${user}`)).body.spend);
    },
    async restart(): Promise<void> {
      await gateway.stop();
      if (counters === 'redis') await deleteRedisKeys(prefix);
      gateway = await startTestGateway({ yaml: yaml(), databaseUrl: database.url, dataDir: gateway.dataDir, env: env() });
    },
  };
}

export type CounterGateway = ReturnType<typeof gatewayWithCounters>;
