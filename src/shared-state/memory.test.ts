/**
 * The in-process limiter's memory: windows of keys that hold nothing are deleted as later
 * admissions sweep them, and a window that still counts (a request in the last 60 s, a
 * parallel slot taken) is never deleted. Likewise the spend book's idle counters, once the
 * store holds all they count and no request of the customer is in flight. The limits
 * themselves are the contract suite's.
 */
import { describe, expect, it } from 'vitest';
import { COUNTER_IDLE_MS, MemoryRateLimiter, MemorySpendBook } from './memory';
import { RATE_WINDOW_MS, type RateLimits, type RateTicket } from './types';

const UNLIMITED: RateLimits = { rpm: null, tpm: null, parallel: null };

async function admitted(limiter: MemoryRateLimiter, key: string, limits: RateLimits, tokens: number, nowMs: number, id: string): Promise<RateTicket> {
  const decision = await limiter.acquire(key, limits, tokens, nowMs, id);
  if (!decision.ok) throw new Error(`${key} refused: ${decision.limitType}`);
  return decision.ticket;
}

describe('MemoryRateLimiter sweep', () => {
  it('deletes the windows of keys idle for a whole window, as later admissions pass', async () => {
    const limiter = new MemoryRateLimiter();
    for (let i = 0; i < 1000; i++) {
      const ticket = await admitted(limiter, `customer:${i}`, UNLIMITED, 10, 0, `t${i}`);
      await limiter.settle(ticket, 12);
    }
    expect(limiter.windowCount).toBe(1000);
    // Within the window nothing may go: each still counts its request.
    for (let i = 0; i < 300; i++) await admitted(limiter, 'busy', UNLIMITED, 0, RATE_WINDOW_MS - 1, `b${i}`);
    expect(limiter.windowCount).toBe(1001);
    // Once the window has passed, a few hundred admissions of one key sweep all of them.
    for (let i = 0; i < 300; i++) await admitted(limiter, 'busy', UNLIMITED, 0, RATE_WINDOW_MS + 1, `c${i}`);
    expect(limiter.windowCount).toBe(1);
  });

  it('keeps a window whose request is still in flight, so its parallel slot and tokens still count', async () => {
    const limiter = new MemoryRateLimiter();
    const limits = { rpm: null, tpm: 100, parallel: 1 };
    const long = await admitted(limiter, 'streaming', limits, 90, 0, 'long');
    for (let i = 0; i < 50; i++) await admitted(limiter, `other:${i}`, UNLIMITED, 0, 2 * RATE_WINDOW_MS, `o${i}`);
    // Still in flight two windows later: the sweep left it, and the slot is taken.
    const refused = await limiter.acquire('streaming', limits, 1, 2 * RATE_WINDOW_MS, 'second');
    expect(refused).toMatchObject({ ok: false, limitType: 'parallel_requests' });
    await limiter.settle(long, 95);
    expect((await limiter.acquire('streaming', limits, 1, 2 * RATE_WINDOW_MS, 'third')).ok).toBe(true);
  });

  it('counts a swept key from zero, as a key never seen', async () => {
    const limiter = new MemoryRateLimiter();
    const limits = { rpm: 2, tpm: null, parallel: null };
    for (const id of ['a', 'b']) await limiter.settle(await admitted(limiter, 'k', limits, 0, 0, id), 0);
    expect((await limiter.acquire('k', limits, 0, 1, 'c')).ok).toBe(false);
    for (let i = 0; i < 10; i++) await admitted(limiter, `x:${i}`, UNLIMITED, 0, RATE_WINDOW_MS + 5, `x${i}`);
    const again = await limiter.acquire('k', limits, 0, RATE_WINDOW_MS + 5, 'd');
    expect(again).toMatchObject({ ok: true, remainingRequests: 1 });
  });
});

describe('MemorySpendBook sweep', () => {
  const key = (customerId: string, scope = '') => ({ customerId, scope, periodStartMs: 0 });

  function book(storeHasAll: (customerId: string) => boolean) {
    const clock = { ms: 0 };
    return { clock, book: new MemorySpendBook({ storeHasAll, now: () => clock.ms }) };
  }

  async function served(spendBook: MemorySpendBook, customerId: string, charge: bigint, id: string): Promise<void> {
    expect((await spendBook.reserve(key(customerId), 5n, null, id)).admitted).toBe(true);
    await spendBook.commit(key(customerId), 5n, charge, id);
  }

  it('forgets the idle counters of customers the store holds all of, as later reservations pass', async () => {
    const { clock, book: spendBook } = book(() => true);
    for (let i = 0; i < 100; i++) await served(spendBook, `customer-${i}`, 7n, `r${i}`);
    expect(spendBook.counterCount).toBe(100);
    // Used less than COUNTER_IDLE_MS ago: nothing goes.
    clock.ms = COUNTER_IDLE_MS - 1;
    for (let i = 0; i < 50; i++) await served(spendBook, 'busy', 1n, `b${i}`);
    expect(spendBook.counterCount).toBe(101);
    clock.ms = 2 * COUNTER_IDLE_MS;
    for (let i = 0; i < 50; i++) await served(spendBook, 'busy', 1n, `c${i}`);
    expect(spendBook.counterCount).toBe(1);
    expect(await spendBook.spendOf(key('busy'))).toBe(100n);
  });

  it('keeps the counters of a customer the store lags behind, or with a request in flight', async () => {
    const lagging = new Set(['unflushed']);
    const { clock, book: spendBook } = book((customerId) => !lagging.has(customerId));
    await served(spendBook, 'unflushed', 7n, 'u');
    // In flight, reserving nothing under one counter (no budget) but holding another: kept whole.
    await spendBook.reserve(key('streaming'), 0n, null, 's');
    await spendBook.reserve(key('streaming', 'model:gpt'), 9n, 100n, 's');
    clock.ms = 10 * COUNTER_IDLE_MS;
    for (let i = 0; i < 20; i++) await served(spendBook, `other-${i}`, 1n, `o${i}`);
    clock.ms = 20 * COUNTER_IDLE_MS;
    for (let i = 0; i < 40; i++) await served(spendBook, 'busy', 1n, `b${i}`);
    expect(await spendBook.spendOf(key('unflushed'))).toBe(7n);
    await spendBook.commit(key('streaming'), 0n, 3n, 's');
    await spendBook.commit(key('streaming', 'model:gpt'), 9n, 3n, 's');
    expect(await spendBook.spendOf(key('streaming'))).toBe(3n);
    expect(await spendBook.spendOf(key('streaming', 'model:gpt'))).toBe(3n);
    // Settled and the store caught up: now it may go.
    lagging.clear();
    clock.ms = 30 * COUNTER_IDLE_MS;
    for (let i = 0; i < 40; i++) await served(spendBook, 'busy', 1n, `c${i}`);
    expect(spendBook.counterCount).toBe(1);
  });

  it('forgets nothing without a store to read it back from', async () => {
    const clock = { ms: 0 };
    const spendBook = new MemorySpendBook({ now: () => clock.ms });
    for (let i = 0; i < 10; i++) await served(spendBook, `customer-${i}`, 7n, `r${i}`);
    clock.ms = 10 * COUNTER_IDLE_MS;
    for (let i = 0; i < 20; i++) await served(spendBook, 'busy', 1n, `b${i}`);
    expect(spendBook.counterCount).toBe(11);
  });
});
