/**
 * The live-event relay against real Redis: the events one process publishes in one event-loop
 * turn travel in one PUBLISH, reach the other process each once and in order (bigints intact),
 * and never come back to their own process's buses; a single envelope (an earlier release's
 * format) is still read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { connectRedis, duplicateConnection, type AnyRedis, type ScriptedRedis } from './redis';
import { RedisEventRelay } from './event-relay';
import { BudgetEventBus, SpendEventBus } from '../ledger/events';
import type { SpendEvent } from '../ledger/types';
import { freshRedisPrefix, REDIS_URL } from '../../test/support/redis';

const silent = pino({ level: 'silent' });
const open: { redis: ScriptedRedis; relay: RedisEventRelay }[] = [];
const watchers: AnyRedis[] = [];

async function startProcess(prefix: string) {
  const redis = await connectRedis(REDIS_URL, { attempts: 1 });
  const spend = new SpendEventBus();
  const received: SpendEvent[] = [];
  spend.subscribe((event) => received.push(event));
  const relay = new RedisEventRelay(redis, prefix, spend, new BudgetEventBus(), silent);
  await relay.start();
  open.push({ redis, relay });
  return { redis, spend, received };
}

function spendEvent(n: number): SpendEvent {
  return { record: { requestId: `r${n}`, costPico: 10n ** 15n + BigInt(n) }, periodSpendPico: BigInt(n), maxBudgetPico: null, softBudgetPico: null, budgetId: null } as unknown as SpendEvent;
}

afterEach(async () => {
  for (const { redis, relay } of open.splice(0)) {
    await relay.stop();
    redis.disconnect();
  }
  for (const watcher of watchers.splice(0)) watcher.disconnect();
});

describe('RedisEventRelay', () => {
  it('sends the events of one turn in one PUBLISH, each delivered once elsewhere and never back to its sender', async () => {
    const prefix = freshRedisPrefix();
    const a = await startProcess(prefix);
    const b = await startProcess(prefix);
    const watcher = duplicateConnection(a.redis);
    watchers.push(watcher);
    const messages: string[] = [];
    watcher.on('message', (_channel: string, message: string) => messages.push(message));
    if (watcher.status === 'wait') await watcher.connect();
    await watcher.subscribe(`${prefix}live-events`);

    for (let n = 0; n < 5; n++) a.spend.publish(spendEvent(n)); // one turn
    await expect.poll(() => b.received.length).toBe(5);
    expect(b.received.map((event) => event.record.requestId)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(b.received[4]!.record.costPico).toBe(10n ** 15n + 4n);
    expect(b.received[4]!.periodSpendPico).toBe(4n);
    expect(messages).toHaveLength(1);
    expect(a.received).toHaveLength(5); // its own five, published locally, none relayed back

    // B relays nothing of what it received; a later turn is a new message.
    b.spend.publish(spendEvent(9));
    await expect.poll(() => a.received.length).toBe(6);
    expect(a.received[5]!.record.requestId).toBe('r9');
    expect(messages).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(b.received.map((event) => event.record.requestId)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r9']);

    // A single envelope, as an earlier release publishes it.
    await watcher.unsubscribe();
    await a.redis.publish(`${prefix}live-events`, JSON.stringify({ origin: 'older-process', kind: 'spend', event: { record: { requestId: 'old', costPico: { $bigint: '7' } }, periodSpendPico: { $bigint: '7' } } }));
    await expect.poll(() => b.received.length).toBe(7);
    expect(b.received[6]!.record.costPico).toBe(7n);
  });
});
