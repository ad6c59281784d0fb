/**
 * @module Redis implementations of the shared-state contract: exact budgets and rate limits
 * across any number of proxies sharing one Redis. Every check-and-reserve is one Lua script
 * (ioredis `defineCommand`: EVALSHA, with EVAL when Redis answers NOSCRIPT).
 */
import { Redis } from 'ioredis';
import type { Pico } from '../shared/money';
import {
  ACQUIRE_SCRIPT,
  COMMIT_SCRIPT,
  RELEASE_SCRIPT,
  RESERVE_SCRIPT,
  SEED_SCRIPT,
  SETTLE_SCRIPT,
  SPEND_OF_SCRIPT,
} from './redis-scripts';
import { RATE_WINDOW_MS, type CommitOptions, type CounterKey, type RateDecision, type RateLimiter, type RateLimits, type RateTicket, type ReserveResult, type SpendBook } from './types';

export const DEFAULT_KEY_PREFIX = 'tollgate:';

/**
 * A crashed proxy never frees the parallel slots it held; they expire after this long. Longer
 * than any request should run (upstream timeouts are shorter), short enough to recover.
 */
export const PARALLEL_SLOT_TTL_MS = 10 * 60_000;

type Reply = (string | number)[];

interface ScriptCommands {
  tollgateReserve(key: string, leases: string, scope: string, period: string, amount: string, limit: string, settlementId: string, leaseTtlMs: string): Promise<Reply>;
  tollgateCommit(key: string, marker: string, leases: string, scope: string, period: string, actual: string, markerTtlMs: string, settlementId: string, onlyIfPresent: string): Promise<string | number>;
  tollgateRelease(key: string, marker: string, leases: string, scope: string, markerTtlMs: string, settlementId: string): Promise<number>;
  tollgateSpendOf(key: string, scope: string, period: string): Promise<string | number>;
  tollgateSeed(key: string, scope: string, period: string, spend: string, onlyIfMissing: string): Promise<number>;
  tollgateAcquire(log: string, tokens: string, slots: string, sequence: string, ...args: string[]): Promise<Reply>;
  tollgateSettle(log: string, tokens: string, slots: string, id: string, actual: string, holdsSlot: string): Promise<number>;
}

/** How long a settlement is remembered: far longer than the catch-up retries of one outage. */
export const SETTLEMENT_MARKER_TTL_MS = 15 * 60_000;

/**
 * A reservation of a proxy that crashed before settling is given back after this long. Longer
 * than any request should run (the default upstream timeout is 10 minutes); a request that
 * outlives its lease is still charged in full, its reservation just stops counting early.
 */
export const RESERVATION_LEASE_TTL_MS = 15 * 60_000;

export type ScriptedRedis = Redis & ScriptCommands;

/**
 * Connects and registers the scripts; rejects when Redis stays unreachable for about ten
 * seconds (long enough for a Redis started alongside, e.g. by docker compose). While the
 * connection is down later, commands fail at once instead of queueing: the hot path answers
 * 503 and settlements go to the catch-up queue. Commands whose reply was lost are not
 * resent blindly either: the catch-up retries them, and settlement markers make that safe.
 */
export async function connectRedis(url: string, options: { attempts?: number; onError?: (error: Error) => void } = {}): Promise<ScriptedRedis> {
  const attempts = options.attempts ?? 20;
  for (let attempt = 1; ; attempt++) {
    const redis = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      // Reconnect within a second of Redis coming back (the default backs off to 5 s).
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    // Connection errors are reported here; without a listener ioredis prints them as unhandled.
    redis.on('error', options.onError ?? (() => {}));
    try {
      await redis.connect();
      return withScripts(redis);
    } catch (error) {
      redis.disconnect();
      if (attempt >= attempts) throw new Error(`cannot reach Redis at REDIS_URL: ${(error as Error).message}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

export function withScripts(redis: Redis): ScriptedRedis {
  redis.defineCommand('tollgateReserve', { numberOfKeys: 2, lua: RESERVE_SCRIPT });
  redis.defineCommand('tollgateCommit', { numberOfKeys: 3, lua: COMMIT_SCRIPT });
  redis.defineCommand('tollgateRelease', { numberOfKeys: 3, lua: RELEASE_SCRIPT });
  redis.defineCommand('tollgateSpendOf', { numberOfKeys: 1, lua: SPEND_OF_SCRIPT, readOnly: true });
  redis.defineCommand('tollgateSeed', { numberOfKeys: 1, lua: SEED_SCRIPT });
  redis.defineCommand('tollgateAcquire', { numberOfKeys: 4, lua: ACQUIRE_SCRIPT });
  redis.defineCommand('tollgateSettle', { numberOfKeys: 3, lua: SETTLE_SCRIPT });
  return redis as ScriptedRedis;
}

const text = (value: Pico | number) => value.toString();

export class RedisSpendBook implements SpendBook {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly prefix = DEFAULT_KEY_PREFIX,
    private readonly leaseTtlMs = RESERVATION_LEASE_TTL_MS,
  ) {}

  /** One hash per customer (all its scopes), so forgetting a customer is one DEL (and its leases). */
  private hashKey(customerId: string): string {
    return `${this.prefix}spend:{${customerId}}`;
  }

  /** The customer's reservation leases by expiry; same hash tag, so one cluster slot. */
  private leasesKey(customerId: string): string {
    return `${this.prefix}leases:{${customerId}}`;
  }

  async reserve(key: CounterKey, amount: Pico, limit: Pico | null, settlementId: string): Promise<ReserveResult> {
    const [admitted, spend, reserved] = await this.redis.tollgateReserve(
      this.hashKey(key.customerId),
      this.leasesKey(key.customerId),
      key.scope,
      text(key.periodStartMs),
      text(amount),
      limit === null ? '' : text(limit),
      settlementId,
      text(this.leaseTtlMs),
    );
    return { admitted: Number(admitted) === 1, spend: BigInt(spend!), reserved: BigInt(reserved!) };
  }

  /** Same hash tag as the counter, so a marker and its counter live in one cluster slot. */
  private markerKey(key: CounterKey, settlementId: string): string {
    return `${this.prefix}settled:{${key.customerId}}:${key.scope}:${settlementId}`;
  }

  async commit(key: CounterKey, _reservation: Pico, actual: Pico, settlementId: string, options: CommitOptions = {}): Promise<Pico> {
    const spend = await this.redis.tollgateCommit(
      this.hashKey(key.customerId),
      this.markerKey(key, settlementId),
      this.leasesKey(key.customerId),
      key.scope,
      text(key.periodStartMs),
      text(actual),
      text(SETTLEMENT_MARKER_TTL_MS),
      settlementId,
      options.onlyIfPresent ? '1' : '0',
    );
    return BigInt(spend);
  }

  async release(key: CounterKey, _reservation: Pico, settlementId: string): Promise<void> {
    await this.redis.tollgateRelease(this.hashKey(key.customerId), this.markerKey(key, settlementId), this.leasesKey(key.customerId), key.scope, text(SETTLEMENT_MARKER_TTL_MS), settlementId);
  }

  async spendOf(key: CounterKey): Promise<Pico> {
    return BigInt(await this.redis.tollgateSpendOf(this.hashKey(key.customerId), key.scope, text(key.periodStartMs)));
  }

  async seed(key: CounterKey, spend: Pico, options: { onlyIfMissing?: boolean } = {}): Promise<void> {
    await this.redis.tollgateSeed(this.hashKey(key.customerId), key.scope, text(key.periodStartMs), text(spend), options.onlyIfMissing ? '1' : '0');
  }

  async forget(customerId: string): Promise<void> {
    await this.redis.del(this.hashKey(customerId), this.leasesKey(customerId));
  }
}

export interface RedisRateLimiterOptions {
  prefix?: string;
  /**
   * Use the caller's `nowMs` instead of Redis `TIME`. Only for tests that need a
   * deterministic clock: proxies must share Redis's clock, not trust their own.
   */
  useCallerClock?: boolean;
  parallelSlotTtlMs?: number;
}

/** Sliding 60 s log per key in a sorted set, the same algorithm as the memory limiter. */
export class RedisRateLimiter implements RateLimiter {
  private readonly prefix: string;
  private readonly useCallerClock: boolean;
  private readonly parallelSlotTtlMs: number;

  constructor(
    private readonly redis: ScriptedRedis,
    options: RedisRateLimiterOptions = {},
  ) {
    this.prefix = options.prefix ?? DEFAULT_KEY_PREFIX;
    this.useCallerClock = options.useCallerClock ?? false;
    this.parallelSlotTtlMs = options.parallelSlotTtlMs ?? PARALLEL_SLOT_TTL_MS;
  }

  /** The keys of one limited key; one hash tag so they stay in one cluster slot. */
  private keysOf(key: string): [string, string, string] {
    const base = `${this.prefix}rate:{${key}}`;
    return [`${base}:log`, `${base}:tokens`, `${base}:slots`];
  }

  async acquire(key: string, limits: RateLimits, estimatedTokens: number, nowMs: number): Promise<RateDecision> {
    const [log, tokens, slots] = this.keysOf(key);
    const limit = (value: number | null) => (value === null ? '' : String(value));
    const reply = await this.redis.tollgateAcquire(
      log,
      tokens,
      slots,
      `${this.prefix}rate-sequence`,
      this.useCallerClock ? text(Math.round(nowMs * 1000)) : '',
      limit(limits.rpm),
      limit(limits.tpm),
      limit(limits.parallel),
      text(Math.max(0, Math.round(estimatedTokens))),
      text(RATE_WINDOW_MS * 1000),
      text(this.parallelSlotTtlMs * 1000),
    );
    if (Number(reply[0]) !== 1) {
      const [, limitType, limitValue, current, retryAfterMs] = reply;
      return {
        ok: false,
        limitType: limitType as 'requests' | 'tokens' | 'parallel_requests',
        limit: Number(limitValue),
        current: Number(current),
        retryAfterMs: Number(retryAfterMs),
      };
    }
    const [, id, at, remainingRequests, remainingTokens] = reply.map(Number) as number[];
    return {
      ok: true,
      ticket: { key, id: id!, tokens: estimatedTokens, at: at!, holdsParallelSlot: true },
      remainingRequests: remainingRequests! < 0 ? null : remainingRequests!,
      remainingTokens: remainingTokens! < 0 ? null : remainingTokens!,
    };
  }

  async settle(ticket: RateTicket, actualTokens: number): Promise<void> {
    const holdsSlot = ticket.holdsParallelSlot;
    // Cleared first so a second settle of the same ticket cannot free someone else's slot.
    ticket.holdsParallelSlot = false;
    const [log, tokens, slots] = this.keysOf(ticket.key);
    await this.redis.tollgateSettle(log, tokens, slots, String(ticket.id), text(Math.max(0, Math.round(actualTokens))), holdsSlot ? '1' : '0');
  }
}
