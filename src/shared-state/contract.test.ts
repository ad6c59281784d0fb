/**
 * One contract, every implementation, one suite: `runSharedStateContract` runs the same
 * cases against the in-process state and the Redis state (real Redis on 127.0.0.1:6379,
 * a fresh key prefix per case, deleted afterwards). Redis-only cases follow.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryRateLimiter, MemorySpendBook } from './memory';
import {
  clusterNodesOf,
  connectRedis,
  MAX_COUNTER_PICO,
  MAX_REQUEST_PICO,
  RedisAdmissions,
  RedisRateLimiter,
  RedisSpendBook,
  RESERVATION_LEASE_TTL_MS,
  SETTLEMENT_MARKER_TTL_MS,
  withScripts,
  type AnyRedis,
  type ScriptedRedis,
} from './redis';
import { ComposedAdmissions } from './admissions';
import { isSharedStateRefusal, type Admissions, type RateLimiter, type RateTicket, type SpendBook } from './types';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from '../../test/support/redis';
import { startRedisCluster, type PrivateCluster } from '../../test/support/redis-cluster';
import { CuttableTcpProxy } from '../../test/support/tcp-proxy';

interface SharedState {
  spendBook: SpendBook;
  rateLimiter: RateLimiter;
  admissions: Admissions;
}

export function runSharedStateContract(name: string, make: () => Promise<SharedState>): void {
  describe(`${name}: SpendBook`, () => {
    const key = { customerId: 'c', scope: '', periodStartMs: 1000 };
    it('admits while spend + reservations < limit and trues up at commit', async () => {
      const { spendBook: book } = await make();
      expect((await book.reserve(key, 60n, 100n, 'r1')).admitted).toBe(true);
      expect((await book.reserve(key, 60n, 100n, 'r2')).admitted).toBe(true); // 60 < 100: admitted
      expect((await book.reserve(key, 1n, 100n, 'r3')).admitted).toBe(false); // 120 >= 100
      expect((await book.commit(key, 60n, 10n, 'r1')).spend).toBe(10n);
      await book.release(key, 60n, 'r2');
      expect(await book.reserve(key, 1n, 100n, 'r4')).toMatchObject({ admitted: true, spend: 10n, reserved: 1n });
    });
    it('starts a new period from zero and keeps late settlements in the old one', async () => {
      const { spendBook: book } = await make();
      await book.reserve(key, 5n, null, 'old', { periodEndMs: 2000 });
      const next = { ...key, periodStartMs: 2000 }; // begins where the old one ended
      expect(await book.reserve(next, 1n, 10n, 'new', { periodEndMs: 3000 })).toMatchObject({ admitted: true, spend: 0n, reserved: 1n });
      // Admitted in the old period: the ledger keeps it there.
      expect(await book.commit(key, 5n, 5n, 'old')).toEqual({ spend: 5n, periodStartMs: 1000 });
      expect(await book.spendOf(next)).toBe(0n);
      expect(await book.spendOf(key, { periodEndMs: 2000 })).toBe(0n); // the counter has moved on
      expect((await book.commit(next, 1n, 1n, 'new')).spend).toBe(1n);
    });
    it('moves to a period a budget change made current, earlier or later, and settles what was in flight into it', async () => {
      const { spendBook: book } = await make();
      const daily = { ...key, periodStartMs: 5000 };
      const monthly = { ...key, periodStartMs: 1000 }; // starts earlier
      await book.commit(daily, 0n, 0n, 'warm'); // the counter exists, in the daily period
      expect((await book.reserve(daily, 4n, null, 'before')).admitted).toBe(true);
      expect((await book.commit(daily, 4n, 3n, 'before')).spend).toBe(3n);
      expect((await book.reserve(daily, 6n, null, 'in-flight')).admitted).toBe(true);
      // The budget became monthly: the store's sum since the 1st (3 today + 10 before) is seeded.
      await book.seed(monthly, 13n, { onlyIfMissing: true, periodChanged: true });
      expect(await book.spendOf(monthly)).toBe(13n);
      // The in-flight reservation still holds: 13 + 6 reaches a limit of 19.
      expect((await book.reserve(monthly, 1n, 19n, 'refused')).admitted).toBe(false);
      // Admitted under the daily period, it settles into the monthly one, and says so.
      expect(await book.commit(daily, 6n, 5n, 'in-flight')).toEqual({ spend: 18n, periodStartMs: 1000 });
      expect(await book.spendOf(monthly)).toBe(18n);
      expect(await book.reserve(monthly, 1n, 20n, 'after')).toMatchObject({ admitted: true, spend: 18n, reserved: 1n });
      // A counter already of that period is live: seeding it again leaves it alone.
      await book.seed(monthly, 2n, { onlyIfMissing: true, periodChanged: true });
      expect(await book.spendOf(monthly)).toBe(18n);
      // Back to daily (a later start): from the store's sum since today.
      await book.seed(daily, 8n, { onlyIfMissing: true, periodChanged: true });
      expect(await book.spendOf(daily)).toBe(8n);
      expect(await book.commit(monthly, 1n, 1n, 'after')).toEqual({ spend: 9n, periodStartMs: 5000 });
      // A natural next period still starts from zero.
      const tomorrow = { ...key, periodStartMs: 9000 };
      expect(await book.reserve(tomorrow, 1n, 10n, 'next')).toMatchObject({ admitted: true, spend: 0n, reserved: 1n });
    });
    it('answers out of period for a counter in a later period inside the key\'s, and keeps its live spend when moved there', async () => {
      const { spendBook: book } = await make();
      const daily = { ...key, periodStartMs: 5000 };
      const monthly = { ...key, periodStartMs: 1000 }; // a budget change made it current; the counter was not moved
      expect((await book.reserve(daily, 4n, null, 'today')).admitted).toBe(true);
      expect((await book.commit(daily, 4n, 3n, 'today')).spend).toBe(3n);
      expect(await book.reserve(monthly, 2n, 100n, 'month', { periodEndMs: 9000 })).toMatchObject({ admitted: false, outOfPeriod: true, spend: 3n, reserved: 0n });
      // Read before it is moved, its spend is the month's too.
      expect(await book.spendOf(monthly, { periodEndMs: 9000 })).toBe(3n);
      expect(await book.spendOf({ ...key, periodStartMs: 2000 }, { periodEndMs: 5000 })).toBe(0n); // a period that has ended
      // Without an end (a lifetime budget) every later start lies inside it.
      expect(await book.reserve({ ...key, periodStartMs: 0 }, 2n, 100n, 'lifetime')).toMatchObject({ admitted: false, outOfPeriod: true });
      // A period that ended where the counter's began is one that has ended, not out of period.
      expect(await book.reserve({ ...key, periodStartMs: 2000 }, 0n, null, 'late', { periodEndMs: 5000 })).toMatchObject({ admitted: true, spend: 3n });
      await book.release({ ...key, periodStartMs: 2000 }, 0n, 'late');
      // Moved with a store sum below the live spend (a charge not flushed yet): the live spend stays.
      await book.seed(monthly, 1n, { onlyIfMissing: true, periodChanged: true });
      expect(await book.spendOf(monthly)).toBe(3n);
      expect(await book.reserve(monthly, 2n, 100n, 'month', { periodEndMs: 9000 })).toMatchObject({ admitted: true, spend: 3n, reserved: 2n });
      // Moved to a later start, the store's sum since then is taken, lower or not.
      await book.seed(daily, 1n, { onlyIfMissing: true, periodChanged: true });
      expect(await book.spendOf(daily)).toBe(1n);
    });
    it('answers out of period for an earlier counter whose period had not ended, while requests are in flight', async () => {
      const { spendBook: book } = await make();
      const monthly = { ...key, periodStartMs: 1000 };
      const daily = { ...key, periodStartMs: 5000 }; // a change moved the start later; the counter was not moved
      expect((await book.reserve(monthly, 4n, null, 'before', { periodEndMs: 9000 })).admitted).toBe(true);
      await book.commit(monthly, 4n, 3n, 'before');
      expect((await book.reserve(monthly, 6n, null, 'in-flight', { periodEndMs: 9000 })).admitted).toBe(true);
      expect(await book.reserve(daily, 1n, 100n, 'today', { periodEndMs: 6000 })).toMatchObject({ admitted: false, outOfPeriod: true });
      expect(await book.spendOf(daily, { periodEndMs: 6000 })).toBe(0n); // the month's spend is not the day's
      // Moved (the store's sum since the new start: nothing yet), what was in flight is the day's.
      await book.seed(daily, 0n, { onlyIfMissing: true, periodChanged: true });
      expect(await book.commit(monthly, 6n, 5n, 'in-flight')).toEqual({ spend: 5n, periodStartMs: 5000 });
      // The next day begins where this one ends: from zero, with a request in flight or not.
      expect((await book.reserve(daily, 2n, null, 'late', { periodEndMs: 6000 })).admitted).toBe(true);
      const tomorrow = { ...key, periodStartMs: 6000 };
      expect(await book.reserve(tomorrow, 1n, 100n, 'tomorrow', { periodEndMs: 7000 })).toMatchObject({ admitted: true, spend: 0n, reserved: 1n });
      expect(await book.commit(daily, 2n, 2n, 'late')).toEqual({ spend: 2n, periodStartMs: 5000 }); // kept in its own day
      // Nothing in flight: an earlier counter whose period had not ended starts over too.
      await book.commit(tomorrow, 1n, 1n, 'tomorrow');
      expect(await book.reserve({ ...key, periodStartMs: 6500 }, 1n, 100n, 'half-day', { periodEndMs: 7000 })).toMatchObject({ admitted: true, spend: 0n });
    });
    it('refuses at once with a zero limit', async () => {
      const { spendBook: book } = await make();
      expect((await book.reserve(key, 0n, 0n, 'r1')).admitted).toBe(false);
    });
    it('gives back only what the settling request itself reserved, once', async () => {
      const { spendBook: book } = await make();
      await book.reserve(key, 5n, null, 'r1');
      await book.reserve(key, 3n, null, 'r2');
      await book.release(key, 50n, 'r1'); // gives back r1's 5, not 50
      expect(await book.reserve(key, 0n, null, 'probe')).toMatchObject({ spend: 0n, reserved: 3n });
      await book.release(key, 5n, 'someone-else'); // reserved nothing here: gives back nothing
      await book.release(key, 5n, 'r1'); // a second settlement of r1 gives back nothing more
      expect(await book.reserve(key, 0n, null, 'probe')).toMatchObject({ spend: 0n, reserved: 3n });
      expect((await book.commit(key, 3n, 7n, 'r2')).spend).toBe(7n);
      expect(await book.reserve(key, 0n, 8n, 'probe')).toMatchObject({ admitted: true, spend: 7n, reserved: 0n });
    });
    it('keeps the reservations of each scope of one request apart', async () => {
      const { spendBook: book } = await make();
      const model = { ...key, scope: 'model:gpt' };
      await book.reserve(key, 4n, null, 'r1');
      await book.reserve(model, 4n, null, 'r1');
      expect((await book.commit(key, 4n, 2n, 'r1')).spend).toBe(2n);
      expect(await book.reserve(model, 0n, null, 'probe')).toMatchObject({ reserved: 4n });
      expect((await book.commit(model, 4n, 2n, 'r1')).spend).toBe(2n);
      expect(await book.reserve(model, 0n, null, 'probe')).toMatchObject({ spend: 2n, reserved: 0n });
    });
    it('seeds settled spend, keeps reservations, and leaves existing counters alone when asked', async () => {
      const { spendBook: book } = await make();
      await book.reserve(key, 30n, null, 'r1');
      await book.seed(key, 50n);
      expect(await book.spendOf(key)).toBe(50n);
      expect((await book.reserve(key, 1n, 80n, 'r2')).admitted).toBe(false); // 50 + 30 >= 80
      await book.seed(key, 0n, { onlyIfMissing: true });
      expect(await book.spendOf(key)).toBe(50n);
      const other = { ...key, customerId: 'd' };
      await book.seed(other, 9n, { onlyIfMissing: true });
      expect(await book.spendOf(other)).toBe(9n);
    });
    it('keeps scopes and customers apart, and forgets a customer', async () => {
      const { spendBook: book } = await make();
      const model = { ...key, scope: 'model:gpt' };
      await book.seed(key, 10n);
      await book.seed(model, 3n);
      await book.seed({ ...key, customerId: 'other' }, 7n);
      expect(await book.spendOf(model)).toBe(3n);
      await book.forget('c');
      expect(await book.spendOf(key)).toBe(0n);
      expect(await book.spendOf(model)).toBe(0n);
      expect(await book.spendOf({ ...key, customerId: 'other' })).toBe(7n);
    });
    it('does not bring back the counter of a customer forgotten while a request ran', async () => {
      const { spendBook: book } = await make();
      await book.seed(key, 10n);
      expect((await book.reserve(key, 4n, 100n, 'in-flight')).admitted).toBe(true);
      await book.forget('c'); // deleted (or a Redis that lost its data)
      expect(await book.commit(key, 4n, 3n, 'in-flight')).toEqual({ spend: 3n, periodStartMs: key.periodStartMs });
      // The store's sum (which the ledger row adds 3 to) seeds it again, not left at 3 alone.
      await book.seed(key, 13n, { onlyIfMissing: true });
      expect(await book.spendOf(key)).toBe(13n);
    });
    it('is exact beyond 2^53 pico-USD', async () => {
      const { spendBook: book } = await make();
      const big = 123_456_789_012_345_678n; // about $123k: not representable as a double
      await book.seed(key, big);
      expect(await book.reserve(key, 1n, big + 1n, 'r1')).toMatchObject({ admitted: true, spend: big });
      expect((await book.reserve(key, 1n, big + 1n, 'r2')).admitted).toBe(false);
      expect((await book.commit(key, 1n, 3n, 'r1')).spend).toBe(big + 3n);
    });
  });

  describe(`${name}: Admissions`, () => {
    const overall = { customerId: 'a', scope: '', periodStartMs: 1000 };
    const model = { ...overall, scope: 'model:gpt' };
    const limits = { rpm: 2, tpm: null, parallel: 1 };
    const admission = (id: string, nowMs: number, modelLimit = 100n) => ({
      customerId: 'a',
      settlementId: id,
      counters: [
        { key: overall, amount: 10n, limit: 100n },
        { key: model, amount: 10n, limit: modelLimit },
      ],
      rate: { key: 'end_user:a', limits, estimatedTokens: 5, nowMs },
    });
    const probe = async (book: SpendBook, key: typeof overall) => book.reserve(key, 0n, null, 'probe');

    it('checks every budget and the rate window at once, and takes nothing when one refuses', async () => {
      const { admissions, spendBook } = await make();
      const refusedByModel = await admissions.admit(admission('r0', 0, 0n));
      expect(refusedByModel).toMatchObject({ admitted: false, refusedBy: 'budget', counter: 1 });
      expect(await probe(spendBook, overall)).toMatchObject({ spend: 0n, reserved: 0n });

      const admitted = await admissions.admit(admission('r1', 0));
      expect(admitted).toMatchObject({ admitted: true, counters: [{ reserved: 10n }, { reserved: 10n }], rate: { ok: true, remainingRequests: 1 } });
      // One request in flight holds the one parallel slot: refused, and no budget is taken.
      expect(await admissions.admit(admission('r2', 1))).toMatchObject({ admitted: false, refusedBy: 'rate', rate: { limitType: 'parallel_requests' } });
      expect(await probe(spendBook, overall)).toMatchObject({ reserved: 10n });
      expect(await probe(spendBook, model)).toMatchObject({ reserved: 10n });
    });

    it('settles every counter and the ticket in one step', async () => {
      const { admissions, spendBook } = await make();
      const admitted = await admissions.admit(admission('r1', 0));
      if (!admitted.admitted || !admitted.rate) throw new Error('not admitted');
      const settlement = {
        customerId: 'a',
        settlementId: 'r1',
        counters: [overall, model].map((key) => ({ key, reservation: 10n, actual: 4n })),
        rate: { ticket: admitted.rate.ticket, actualTokens: 3 },
      };
      expect(await admissions.settle(settlement)).toEqual([overall, model].map((key) => ({ spend: 4n, periodStartMs: key.periodStartMs })));
      // Redis can lose a reply, so a resend must change nothing (one process never resends).
      if (name === 'redis') expect(await admissions.settle(settlement)).toEqual([overall, model].map((key) => ({ spend: 4n, periodStartMs: key.periodStartMs })));
      expect(await probe(spendBook, overall)).toMatchObject({ spend: 4n, reserved: 0n });
      expect(await probe(spendBook, model)).toMatchObject({ spend: 4n, reserved: 0n });
      // The slot is free again; the window still counts r1 (rpm 2).
      expect(await admissions.admit(admission('r2', 1))).toMatchObject({ admitted: true, rate: { remainingRequests: 0 } });
      expect(await admissions.admit(admission('r3', 2))).toMatchObject({ admitted: false, refusedBy: 'rate' });
    });

    it('says which period each counter charged, when a budget change moved one while the request ran', async () => {
      const { admissions, spendBook } = await make();
      const admitted = await admissions.admit(admission('r1', 0));
      if (!admitted.admitted || !admitted.rate) throw new Error('not admitted');
      // The overall budget's period now starts earlier; the model's is unchanged.
      const earlier = { ...overall, periodStartMs: 500 };
      await spendBook.seed(earlier, 7n, { onlyIfMissing: true, periodChanged: true });
      const settlement = {
        customerId: 'a',
        settlementId: 'r1',
        counters: [overall, model].map((key) => ({ key, reservation: 10n, actual: 4n })),
        rate: { ticket: admitted.rate.ticket, actualTokens: 3 },
      };
      const expected = [
        { spend: 11n, periodStartMs: 500 },
        { spend: 4n, periodStartMs: 1000 },
      ];
      expect(await admissions.settle(settlement)).toEqual(expected);
      if (name === 'redis') expect(await admissions.settle(settlement)).toEqual(expected); // a resend answers alike
      expect(await probe(spendBook, earlier)).toMatchObject({ spend: 11n, reserved: 0n });
    });

    it('takes nothing and names the counter when one is in a period its budget no longer has', async () => {
      const { admissions, spendBook } = await make();
      const later = { ...overall, periodStartMs: 4000 }; // the counter's period, inside the overall key's
      await spendBook.reserve(later, 0n, null, 'warm');
      await spendBook.release(later, 0n, 'warm');
      const request = admission('r1', 0);
      request.counters = [
        { key: model, amount: 10n, limit: 100n },
        { key: overall, amount: 10n, limit: 100n, periodEndMs: 9000 },
      ] as typeof request.counters;
      expect(await admissions.admit(request)).toEqual({ admitted: false, refusedBy: 'outOfPeriod', counter: 1 });
      expect(await probe(spendBook, later)).toMatchObject({ spend: 0n, reserved: 0n });
      expect(await probe(spendBook, model)).toMatchObject({ spend: 0n, reserved: 0n });
      // Moved, it admits; the rate window had not counted the refused attempt (rpm 2).
      await spendBook.seed(overall, 0n, { onlyIfMissing: true, periodChanged: true });
      expect(await admissions.admit({ ...request, settlementId: 'r2' })).toMatchObject({ admitted: true, rate: { remainingRequests: 1 } });
    });

    it('releases every counter and frees the ticket, also for a ticket that was never admitted', async () => {
      const { admissions, spendBook } = await make();
      const admitted = await admissions.admit(admission('r1', 0));
      if (!admitted.admitted || !admitted.rate) throw new Error('not admitted');
      const release = (id: string, ticket: RateTicket) => ({ customerId: 'a', settlementId: id, counters: [overall, model].map((key) => ({ key, reservation: 10n, actual: null })), rate: { ticket, actualTokens: 0 } });
      const never: RateTicket = { key: 'end_user:a', id: 'never-admitted', tokens: 0, at: 0, holdsParallelSlot: true };
      await admissions.settle(release('never-admitted', never));
      expect(await probe(spendBook, overall)).toMatchObject({ reserved: 10n });
      expect(await admissions.admit(admission('r2', 1))).toMatchObject({ admitted: false, refusedBy: 'rate' }); // r1 still holds the slot
      await admissions.settle(release('r1', admitted.rate.ticket));
      expect(await probe(spendBook, overall)).toMatchObject({ spend: 0n, reserved: 0n });
      expect(await admissions.admit(admission('r3', 2))).toMatchObject({ admitted: true });
    });
  });

  describe(`${name}: RateLimiter`, () => {
    it('allows rpm requests in any 60 s window (sliding, not fixed)', async () => {
      const { rateLimiter: limiter } = await make();
      const limits = { rpm: 2, tpm: null, parallel: null };
      const a = await limiter.acquire('k', limits, 1, 0, 't1');
      const b = await limiter.acquire('k', limits, 1, 59_000, 't2');
      expect(a.ok && b.ok).toBe(true);
      if (a.ok) await limiter.settle(a.ticket, 1);
      if (b.ok) await limiter.settle(b.ticket, 1);
      // A fixed window would reset at 60 s and admit two more here.
      const c = await limiter.acquire('k', limits, 1, 60_500, 't3');
      expect(c).toMatchObject({ ok: true, remainingRequests: 0 }); // a left the window at 60 s
      const d = await limiter.acquire('k', limits, 1, 61_000, 't4');
      expect(d).toMatchObject({ ok: false, limitType: 'requests', limit: 2, current: 2 });
      if (!d.ok) expect(d.retryAfterMs).toBe(59_000 + 60_000 - 61_000);
    });
    it('reserves tokens and trues them up', async () => {
      const { rateLimiter: limiter } = await make();
      const limits = { rpm: null, tpm: 100, parallel: null };
      const a = await limiter.acquire('k', limits, 90, 0, 't5');
      expect(a).toMatchObject({ ok: true, remainingTokens: 10, remainingRequests: null });
      expect(await limiter.acquire('k', limits, 20, 1, 't6')).toMatchObject({ ok: true }); // 90 < 100
      const refused = await limiter.acquire('k', limits, 1, 2, 't7');
      expect(refused).toMatchObject({ ok: false, limitType: 'tokens', current: 110 }); // 110 >= 100
      if (!refused.ok) expect(refused.retryAfterMs).toBe(60_000 - 2); // once a's 90 leave: 20 < 100
      if (a.ok) await limiter.settle(a.ticket, 10);
      expect((await limiter.acquire('k', limits, 1, 3, 't8')).ok).toBe(true); // 30 < 100
    });
    it('limits requests in flight', async () => {
      const { rateLimiter: limiter } = await make();
      const limits = { rpm: null, tpm: null, parallel: 1 };
      const a = await limiter.acquire('k', limits, 0, 0, 't9');
      expect(await limiter.acquire('k', limits, 0, 1, 't10')).toMatchObject({ ok: false, limitType: 'parallel_requests' });
      if (a.ok) await limiter.settle(a.ticket, 0);
      if (a.ok) await limiter.settle(a.ticket, 0); // settling twice frees one slot only
      const b = await limiter.acquire('k', limits, 0, 2, 't11');
      expect(b.ok).toBe(true);
      expect((await limiter.acquire('k', limits, 0, 3, 't12')).ok).toBe(false);
    });
    it('keeps keys apart', async () => {
      const { rateLimiter: limiter } = await make();
      const limits = { rpm: 1, tpm: null, parallel: null };
      expect((await limiter.acquire('k', limits, 0, 0, 't13')).ok).toBe(true);
      expect((await limiter.acquire('other', limits, 0, 0, 't14')).ok).toBe(true);
      expect((await limiter.acquire('k', limits, 0, 1, 't15')).ok).toBe(false);
    });
  });
}

runSharedStateContract('memory', async () => {
  const spendBook = new MemorySpendBook();
  const rateLimiter = new MemoryRateLimiter();
  return { spendBook, rateLimiter, admissions: new ComposedAdmissions(spendBook, rateLimiter) };
});

/** A fresh key prefix per case on the real Redis; every key under it is deleted afterwards. */
const connections: AnyRedis[] = [];
const prefixes: string[] = [];

function redisConnection(): ScriptedRedis {
  const redis = withScripts(new Redis(REDIS_URL, { maxRetriesPerRequest: 1 }));
  connections.push(redis);
  return redis;
}

function freshPrefix(): string {
  const prefix = freshRedisPrefix();
  prefixes.push(prefix);
  return prefix;
}

afterEach(async () => {
  for (const prefix of prefixes.splice(0)) await deleteRedisKeys(prefix);
});
afterAll(async () => {
  for (const redis of connections.splice(0)) redis.disconnect();
});

runSharedStateContract('redis', async () => {
  const redis = redisConnection();
  const prefix = freshPrefix();
  return {
    spendBook: new RedisSpendBook(redis, prefix),
    rateLimiter: new RedisRateLimiter(redis, { prefix, useCallerClock: true }),
    admissions: new RedisAdmissions(redis, prefix, RESERVATION_LEASE_TTL_MS, { useCallerClock: true }),
  };
});

/**
 * The same contract on a real 3-master Redis Cluster started for this file: every script
 * touches one customer's keys (one hash slot), so the cluster serves it as one Redis would.
 */
let cluster: Promise<PrivateCluster> | null = null;
afterAll(async () => {
  if (cluster) await (await cluster).stop();
});

runSharedStateContract('redis cluster', async () => {
  cluster ??= startRedisCluster();
  const redis = await connectRedis((await cluster).url, { attempts: 3 });
  connections.push(redis);
  expect(redis).toBeInstanceOf(Cluster);
  expect((redis as Cluster).nodes('master')).toHaveLength(3);
  const prefix = freshRedisPrefix();
  return {
    spendBook: new RedisSpendBook(redis, prefix),
    rateLimiter: new RedisRateLimiter(redis, { prefix, useCallerClock: true }),
    admissions: new RedisAdmissions(redis, prefix, RESERVATION_LEASE_TTL_MS, { useCallerClock: true }),
  };
});

describe('redis: connecting', () => {
  it('reads a redis+cluster:// URL as cluster nodes', () => {
    expect(clusterNodesOf('redis+cluster://user:p%40ss@10.0.0.1:7000,10.0.0.2')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
      ],
      username: 'user',
      password: 'p@ss',
    });
    expect(clusterNodesOf('redis://127.0.0.1:6379')).toBeNull();
    expect(() => clusterNodesOf('redis+cluster://a:b:c')).toThrow(/not host:port/);
  });

  it('rejects with a clear message when Redis cannot be reached', async () => {
    await expect(connectRedis('redis://127.0.0.1:1', { attempts: 2 })).rejects.toThrow(/cannot reach Redis at REDIS_URL/);
  });

  it('connects and runs the scripts', async () => {
    const redis = await connectRedis(REDIS_URL);
    connections.push(redis);
    const book = new RedisSpendBook(redis, freshPrefix());
    expect(await book.reserve({ customerId: 'c', scope: '', periodStartMs: 0 }, 1n, 2n, 'r1')).toMatchObject({ admitted: true });
  });
});

describe('redis: across connections (as across proxies)', () => {
  it('admits exactly as many concurrent reservations as the limit affords', async () => {
    const prefix = freshPrefix();
    const books = [redisConnection(), redisConnection(), redisConnection()].map((redis) => new RedisSpendBook(redis, prefix));
    const key = { customerId: 'burst', scope: '', periodStartMs: 0 };
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => books[i % 3]!.reserve(key, 10n, 100n, `request-${i}`)));
    expect(results.filter((r) => r.admitted)).toHaveLength(10);
    expect(await books[1]!.reserve(key, 0n, null, 'probe')).toMatchObject({ reserved: 100n });
  });

  it('applies a settlement once however often it is retried (a reply lost with the connection)', async () => {
    const book = new RedisSpendBook(redisConnection(), freshPrefix());
    const key = { customerId: 'retried', scope: '', periodStartMs: 0 };
    await book.reserve(key, 10n, null, 'request-1');
    await book.reserve(key, 10n, null, 'request-2');
    expect((await book.commit(key, 10n, 4n, 'request-1')).spend).toBe(4n);
    expect((await book.commit(key, 10n, 4n, 'request-1')).spend).toBe(4n);
    await book.release(key, 10n, 'request-2');
    await book.release(key, 10n, 'request-2');
    expect(await book.reserve(key, 0n, null, 'probe')).toMatchObject({ spend: 4n, reserved: 0n });
    await book.reserve(key, 10n, null, 'request-3');
    await book.release(key, 10n, 'request-1'); // a request settles once: a release after its commit is ignored
    expect(await book.reserve(key, 0n, null, 'probe')).toMatchObject({ spend: 4n, reserved: 10n });
  });

  it('gives back the reservations of a proxy that died before settling, once their lease runs out', async () => {
    const prefix = freshPrefix();
    const [dying, living] = [redisConnection(), redisConnection()].map((redis) => new RedisSpendBook(redis, prefix, 300));
    const key = { customerId: 'orphaned', scope: '', periodStartMs: 0 };
    const model = { ...key, scope: 'model:gpt' };
    expect((await dying!.reserve(key, 60n, 100n, 'lost-request')).admitted).toBe(true);
    expect((await dying!.reserve(model, 60n, 100n, 'lost-request')).admitted).toBe(true);
    expect((await living!.reserve(key, 60n, 100n, 'kept-request')).admitted).toBe(true); // 60 < 100
    expect((await living!.reserve(key, 1n, 100n, 'refused')).admitted).toBe(false); // 120 >= 100: the dead proxy still holds 60
    await new Promise((resolve) => setTimeout(resolve, 400)); // both leases run out (300 ms)
    // Every lease ran out, kept-request's too (it outlived its lease): all are given back, and
    // kept-request's late commit is still charged in full but gives back nothing twice.
    expect(await living!.reserve(key, 1n, 100n, 'after')).toMatchObject({ admitted: true, reserved: 1n });
    expect(await living!.reserve(model, 1n, 100n, 'after')).toMatchObject({ admitted: true, reserved: 1n });
    expect((await living!.commit(key, 60n, 7n, 'kept-request')).spend).toBe(7n);
    expect(await living!.reserve(key, 0n, null, 'probe')).toMatchObject({ spend: 7n, reserved: 1n });
  });

  it('admits exactly rpm requests with the Redis clock, and times out stale parallel slots', async () => {
    const prefix = freshPrefix();
    const limiters = [redisConnection(), redisConnection()].map((redis) => new RedisRateLimiter(redis, { prefix, parallelSlotTtlMs: 300 }));
    const limits = { rpm: 5, tpm: null, parallel: null };
    const decisions = await Promise.all(Array.from({ length: 12 }, (_, i) => limiters[i % 2]!.acquire('rpm', limits, 0, 0, `burst-${i}`)));
    expect(decisions.filter((d) => d.ok)).toHaveLength(5);
    const refused = decisions.find((d) => !d.ok);
    expect(refused).toMatchObject({ ok: false, limitType: 'requests', current: 5 });
    if (refused && !refused.ok) expect(refused.retryAfterMs).toBeGreaterThan(50_000);

    // A proxy that crashed holding a slot: it is given back after the safety TTL.
    const parallel = { rpm: null, tpm: null, parallel: 1 };
    expect((await limiters[0]!.acquire('slot', parallel, 0, 0, 't17')).ok).toBe(true);
    expect((await limiters[1]!.acquire('slot', parallel, 0, 0, 't18')).ok).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await limiters[1]!.acquire('slot', parallel, 0, 0, 't19')).ok).toBe(true);
  });

  it('gives every key a TTL so abandoned windows expire', async () => {
    const prefix = freshPrefix();
    const redis = redisConnection();
    const limiter = new RedisRateLimiter(redis, { prefix });
    await limiter.acquire('ttl', { rpm: 10, tpm: 10, parallel: 1 }, 1, 0, 't20');
    const keys = await redis.keys(`${prefix}rate:*`);
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
    }
  });
});

describe('redis: numbers, refusals and markers', () => {
  it('bounds every number a script receives, so none can overflow it', async () => {
    const redis = redisConnection();
    const prefix = freshPrefix();
    const book = new RedisSpendBook(redis, prefix);
    const key = { customerId: 'huge', scope: '', periodStartMs: 0 };
    expect(await book.reserve(key, 2n ** 80n, 2n ** 100n, 'r1')).toMatchObject({ admitted: true, reserved: MAX_REQUEST_PICO });
    expect(await book.reserve(key, -5n, 2n ** 100n, 'r2')).toMatchObject({ admitted: true, reserved: MAX_REQUEST_PICO });
    expect((await book.commit(key, 0n, 2n ** 90n, 'r1')).spend).toBe(MAX_REQUEST_PICO);
    await book.seed({ ...key, customerId: 'seeded' }, 2n ** 70n);
    expect(await book.spendOf({ ...key, customerId: 'seeded' })).toBe(MAX_COUNTER_PICO);
    // A limit is compared exactly whatever its size: $5M is not cut down to anything smaller.
    await book.seed({ ...key, customerId: 'rich' }, 4_000_000n * 10n ** 12n);
    expect(await book.reserve({ ...key, customerId: 'rich' }, 1n, 5_000_000n * 10n ** 12n, 'r3')).toMatchObject({ admitted: true });
    expect(await book.reserve({ ...key, customerId: 'rich' }, 1n, 4_000_000n * 10n ** 12n, 'r4')).toMatchObject({ admitted: false });

    const limiter = new RedisRateLimiter(redis, { prefix, useCallerClock: true });
    for (const tokens of [1e300, 2 ** 53, Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      const decision = await limiter.acquire('huge', { rpm: 1e300, tpm: null, parallel: 1e300 }, tokens, 0, `t-${tokens}`);
      expect(decision.ok).toBe(true);
      if (decision.ok) await limiter.settle(decision.ticket, tokens);
    }
    // Bounded tokens still count: a tpm of 10 is exhausted by one huge ticket.
    expect(await limiter.acquire('huge-tpm', { rpm: null, tpm: 10, parallel: null }, 1e300, 0, 'a')).toMatchObject({ ok: true });
    expect(await limiter.acquire('huge-tpm', { rpm: null, tpm: 10, parallel: null }, 1, 1, 'b')).toMatchObject({ ok: false, limitType: 'tokens' });
  });

  it('reports a script error as a refusal, not as Redis being unreachable', async () => {
    const redis = redisConnection();
    const prefix = freshPrefix();
    await redis.set(`${prefix}spend:{clobbered}`, 'not a hash');
    const book = new RedisSpendBook(redis, prefix);
    const error = await book.reserve({ customerId: 'clobbered', scope: '', periodStartMs: 0 }, 1n, 10n, 'r1').catch((e: unknown) => e);
    expect(isSharedStateRefusal(error)).toBe(true);
    expect((error as Error).message).toMatch(/WRONGTYPE/);
    // An unreachable Redis is not a refusal.
    const unreachable = await connectRedis('redis://127.0.0.1:1', { attempts: 1 }).catch((e: unknown) => e);
    expect(isSharedStateRefusal(unreachable)).toBe(false);
  });

  it('times a command out on a silent connection instead of waiting for ever', async () => {
    const target = new URL(REDIS_URL);
    const link = await new CuttableTcpProxy(target.hostname, Number(target.port || 6379)).start();
    try {
      const redis = await connectRedis(`redis://127.0.0.1:${link.port}`, { commandTimeoutMs: 200 });
      connections.push(redis);
      const book = new RedisSpendBook(redis, freshPrefix());
      const key = { customerId: 'silent', scope: '', periodStartMs: 0 };
      await book.reserve(key, 1n, null, 'r1');
      link.stall();
      await expect(book.commit(key, 1n, 1n, 'r1')).rejects.toThrow(/timed out/);
      link.resume();
      // A fresh connection replaces the silent one; the retry is applied once.
      await expect.poll(() => book.commit(key, 1n, 1n, 'r1').then((settled) => settled.spend, () => null), { timeout: 5_000, interval: 100 }).toBe(1n);
      expect((await book.commit(key, 1n, 1n, 'r1')).spend).toBe(1n);
    } finally {
      await link.stop();
    }
  });

  it('remembers settlements in one hash per customer and window, not a key per request', async () => {
    const redis = redisConnection();
    const prefix = freshPrefix();
    let now = 10 * SETTLEMENT_MARKER_TTL_MS + 1;
    const book = new RedisSpendBook(redis, prefix, RESERVATION_LEASE_TTL_MS, () => now);
    const key = { customerId: 'busy', scope: '', periodStartMs: 0 };
    for (let i = 0; i < 50; i++) {
      await book.reserve(key, 2n, null, `request-${i}`);
      await book.commit(key, 2n, 1n, `request-${i}`);
    }
    // The counter hash, the leases (deleted once empty) and this window's markers: nothing per request.
    const keys = await redis.keys(`${prefix}*`);
    expect(keys).toContain(`${prefix}spend:{busy}`);
    expect(keys.filter((name) => name.includes('settled'))).toEqual([`${prefix}settled:{busy}:10`]);
    expect(keys.length).toBeLessThanOrEqual(3);
    expect(await redis.pttl(`${prefix}settled:{busy}:10`)).toBeGreaterThan(SETTLEMENT_MARKER_TTL_MS);
    // A retry in the next window is still recognised; the counter is unchanged.
    now += SETTLEMENT_MARKER_TTL_MS;
    expect((await book.commit(key, 2n, 1n, 'request-0')).spend).toBe(50n);
    await book.release(key, 2n, 'request-1');
    expect(await book.reserve(key, 0n, null, 'probe')).toMatchObject({ spend: 50n, reserved: 0n });
  });
});
