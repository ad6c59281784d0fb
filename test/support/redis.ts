/** The real Redis the tests share (127.0.0.1:6379 unless TEST_REDIS_URL says otherwise). */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own for one test's gateways (TOLLGATE_REDIS_PREFIX). */
export function freshRedisPrefix(): string {
  return `tollgate:test:${randomUUID()}:`;
}

/** Deletes every key under `prefix`, so tests leave the shared Redis as they found it. */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
