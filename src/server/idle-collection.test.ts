import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { fullCollection, IdleCollector } from './idle-collection';

function collector(state: { requests: number; inFlight: number; collections: number }) {
  return new IdleCollector({
    quietMs: 1000,
    activity: () => state.requests,
    inFlight: () => state.inFlight,
    collect: () => {
      state.collections++;
    },
  });
}

describe('a full collection when the gateway falls quiet', () => {
  it('collects once after start-up and once after each burst, never while requests arrive or are answered', () => {
    const state = { requests: 0, inFlight: 0, collections: 0 };
    const idle = collector(state);
    expect(idle.check()).toBe(false); // the first tick only records where things stand
    expect(idle.check()).toBe(true); // a quiet interval after start-up
    expect(idle.check()).toBe(false); // and not again while nothing happens
    expect(idle.check()).toBe(false);
    expect(state.collections).toBe(1);

    state.requests += 5; // a burst
    expect(idle.check()).toBe(false);
    state.requests += 3;
    expect(idle.check()).toBe(false);
    expect(idle.check()).toBe(true); // quiet for a whole interval after it
    expect(idle.check()).toBe(false);

    state.requests += 1; // one long stream: nothing new arrives, but it is being answered
    state.inFlight = 1;
    expect(idle.check()).toBe(false);
    expect(idle.check()).toBe(false);
    expect(idle.check()).toBe(false);
    state.inFlight = 0;
    expect(idle.check()).toBe(true);
    expect(state.collections).toBe(3);
  });

  it('is off at 0 and takes no gc() then', () => {
    const idle = new IdleCollector({ quietMs: 0, activity: () => 0, inFlight: () => 0 });
    idle.start();
    idle.stop();
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });

  it('really collects, without leaving a gc global to any other context', async () => {
    const collect = fullCollection();
    expect(runInNewContext('typeof gc')).toBe('undefined');
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
    // Garbage only a full collection reclaims: the full collections that see it still held move
    // it to the old generation, which scavenges do not reach.
    const holder: { data: object[] | null } = { data: Array.from({ length: 10_000 }, (_, index) => ({ index })) };
    const target = new WeakRef(holder.data!);
    collect();
    collect();
    holder.data = null;
    await new Promise((resolve) => setImmediate(resolve)); // a WeakRef holds its target until the job ends
    collect();
    expect(target.deref()).toBeUndefined();
  });
});
