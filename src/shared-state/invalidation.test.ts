/**
 * Acknowledged invalidation against real Redis: `publish` answers only once every other
 * subscribed process has applied the change, and gives up on a stuck one after the timeout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { connectRedis, type ScriptedRedis } from './redis';
import { RedisInvalidation, type EntityChange } from './invalidation';
import { freshRedisPrefix, REDIS_URL } from '../../test/support/redis';

const silent = pino({ level: 'silent' });
const open: { redis: ScriptedRedis; invalidation: RedisInvalidation }[] = [];

async function startProcess(prefix: string, onChange: (changes: EntityChange[]) => Promise<void>, ackTimeoutMs = 2_000) {
  const redis = await connectRedis(REDIS_URL, { attempts: 1 });
  const invalidation = new RedisInvalidation(redis, prefix, silent, ackTimeoutMs);
  await invalidation.start(onChange, () => {});
  open.push({ redis, invalidation });
  return invalidation;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  for (const { redis, invalidation } of open.splice(0)) {
    await invalidation.stop();
    redis.disconnect();
  }
});

describe('RedisInvalidation', () => {
  it('resolves publish only after every other process has applied the change', async () => {
    const prefix = freshRedisPrefix();
    const applied: string[] = [];
    const publisher = await startProcess(prefix, async () => {
      applied.push('publisher'); // its own notices are not delivered to itself
    });
    await startProcess(prefix, async (changes) => {
      await sleep(150);
      applied.push(`fast:${changes[0]!.id}`);
    });
    await startProcess(prefix, async (changes) => {
      await sleep(400);
      applied.push(`slow:${changes[0]!.id}`);
    });
    await publisher.publish([{ kind: 'key', id: 'k1' }]);
    expect(applied.sort()).toEqual(['fast:k1', 'slow:k1']);
  });

  it('acknowledges a change whose reload failed, so the admin call is not held up', async () => {
    const prefix = freshRedisPrefix();
    const publisher = await startProcess(prefix, async () => {});
    await startProcess(prefix, async () => {
      throw new Error('store unreachable');
    });
    const started = Date.now();
    await publisher.publish([{ kind: 'customer', id: 'c1' }]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('gives up on a process that never acknowledges after the timeout', async () => {
    const prefix = freshRedisPrefix();
    const publisher = await startProcess(prefix, async () => {}, 300);
    await startProcess(prefix, () => new Promise<void>(() => {})); // stuck forever
    const started = Date.now();
    await publisher.publish([{ kind: 'budget', id: 'b1' }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('answers at once when no other process listens', async () => {
    const prefix = freshRedisPrefix();
    const publisher = await startProcess(prefix, async () => {}, 5_000);
    const started = Date.now();
    await publisher.publish([{ kind: 'key', id: 'lonely' }]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
