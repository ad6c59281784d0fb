/**
 * @module Redis implementations of the shared-state contract: exact budgets and rate limits
 * across any number of proxies sharing one Redis. Every check-and-reserve is one Lua script
 * (ioredis `defineCommand`: EVALSHA, with EVAL when Redis answers NOSCRIPT).
 */
import { Cluster, Redis, ReplyError, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Pico } from '../shared/money';
import { atEndOfTurn } from '../shared/end-of-turn';
import {
  ACQUIRE_SCRIPT,
  ADMIT_SCRIPT,
  COMMIT_SCRIPT,
  RELEASE_SCRIPT,
  RESERVE_SCRIPT,
  SEED_SCRIPT,
  SETTLE_REQUEST_SCRIPT,
  SETTLE_SCRIPT,
  SPEND_OF_SCRIPT,
} from './redis-scripts';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  RATE_WINDOW_MS,
  SharedStateRefusal,
  type AdmissionOutcome,
  type AdmissionRequest,
  type Admissions,
  type CommitOptions,
  type CounterKey,
  type RateDecision,
  type RateLimiter,
  type RateLimits,
  type RateTicket,
  type PeriodEndOptions,
  type ReserveResult,
  type SeedOptions,
  type SettledCounter,
  type SettlementRequest,
  type SpendBook,
} from './types';

export const DEFAULT_KEY_PREFIX = 'tollgate:';

/**
 * A crashed proxy never frees the parallel slots it held; they expire after this long. Longer
 * than any request should run (upstream timeouts are shorter), short enough to recover.
 */
export const PARALLEL_SLOT_TTL_MS = 10 * 60_000;


type Reply = (string | number)[];
/** A counter's settlement as the scripts answer it: {settled spend, period start it counted into}. */
type SettledReply = [string | number, string | number];

function settledCounterOf([spend, periodStartMs]: SettledReply): SettledCounter {
  return { spend: BigInt(spend), periodStartMs: Number(periodStartMs) };
}

interface ScriptCommands {
  tollgateReserve(key: string, leases: string, scope: string, period: string, amount: string, limit: string, settlementId: string, leaseTtlMs: string, periodEnd: string): Promise<Reply>;
  tollgateCommit(key: string, markers: string, previousMarkers: string, leases: string, scope: string, period: string, actual: string, markerTtlMs: string, settlementId: string, onlyIfPresent: string): Promise<SettledReply>;
  tollgateRelease(key: string, markers: string, previousMarkers: string, leases: string, scope: string, markerTtlMs: string, settlementId: string): Promise<number>;
  tollgateSpendOf(key: string, scope: string, period: string, periodEnd: string): Promise<string | number>;
  tollgateSeed(key: string, scope: string, period: string, spend: string, onlyIfMissing: string, periodChanged: string): Promise<number>;
  tollgateAcquire(log: string, tokens: string, slots: string, ...args: string[]): Promise<Reply>;
  tollgateSettle(log: string, tokens: string, slots: string, member: string, actual: string): Promise<number>;
  tollgateAdmit(key: string, leases: string, log: string, tokens: string, slots: string, ...args: string[]): Promise<Reply>;
  tollgateSettleRequest(key: string, markers: string, previousMarkers: string, leases: string, log: string, tokens: string, slots: string, ...args: string[]): Promise<SettledReply[]>;
}

/**
 * How long a settlement is remembered at least (at most twice as long): far longer than the
 * catch-up retries of one outage, and the horizon of a crash-journal replay. Markers live in
 * one hash per customer and window of this length.
 */
export const SETTLEMENT_MARKER_TTL_MS = 15 * 60_000;

/**
 * A reservation of a proxy that crashed before settling is given back after this long. Longer
 * than any request should run (the default upstream timeout is 10 minutes); a request that
 * outlives its lease is still charged in full, its reservation just stops counting early.
 */
export const RESERVATION_LEASE_TTL_MS = 15 * 60_000;

/**
 * Bounds on every number a script receives, so no input can overflow Redis's 64-bit integers
 * or Lua's doubles (exact to 2^53). One request reserves or settles at most $10,000 (many in
 * flight still fit a counter); seeded spend at most 2^62 pico ($4.6M), which a counter can
 * hold. Limits are only compared, as exact decimal strings, so they can be far larger (a
 * limit beyond what a counter holds is no limit). Token counts and rate limits stay far below
 * 2^53 even summed over a window.
 */
export const MAX_REQUEST_PICO = 10n ** 16n;
export const MAX_COUNTER_PICO = 2n ** 62n;
export const MAX_LIMIT_PICO = 10n ** 30n;
export const MAX_SCRIPT_TOKENS = 2 ** 40;

export function boundedPico(value: Pico, max: Pico): string {
  if (value < 0n) return '0';
  return (value > max ? max : value).toString();
}

export function boundedCount(value: number): string {
  if (!Number.isFinite(value) || value <= 0) return '0';
  return String(Math.min(MAX_SCRIPT_TOKENS, Math.round(value)));
}

/** A connection to one Redis, or to a Redis Cluster (every script touches one slot). */
export type AnyRedis = Redis | Cluster;
export type ScriptedRedis = AnyRedis & ScriptCommands;

const CLUSTER_SCHEME = 'redis+cluster://';

/** A second connection like `redis` (for subscribing: a subscribed connection does nothing else). */
export function duplicateConnection(redis: AnyRedis): AnyRedis {
  return redis instanceof Cluster ? redis.duplicate() : redis.duplicate();
}

/**
 * PUBLISHes and returns how many subscribers, across the whole deployment, the message went
 * to. On one Redis that is PUBLISH's own reply. In a Redis Cluster PUBLISH reaches every
 * node's subscribers but counts only those of the node it was sent to, so the count is the
 * sum of every node's `PUBSUB NUMSUB`, read just before publishing. A subscriber that joins in
 * between may get the message without being counted, which only means one ack more.
 */
export async function publishCounted(redis: AnyRedis, channel: string, message: string): Promise<number> {
  if (!(redis instanceof Cluster)) return redis.publish(channel, message);
  const counts = await Promise.all(redis.nodes('all').map((node) => node.pubsub('NUMSUB', channel) as Promise<[string, number]>));
  await redis.publish(channel, message);
  return counts.reduce((sum, reply) => sum + Number(reply[1] ?? 0), 0);
}

/**
 * `redis+cluster://[user:password@]host:port,host:port,…` names a Redis Cluster by some of its
 * nodes (the client discovers the rest); anything else is a single Redis URL.
 */
export function clusterNodesOf(url: string): { nodes: ClusterNode[]; username?: string; password?: string } | null {
  if (!url.startsWith(CLUSTER_SCHEME)) return null;
  let rest = url.slice(CLUSTER_SCHEME.length).replace(/\/.*$/, '');
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const credentials = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = credentials.indexOf(':');
    username = decodeURIComponent(colon >= 0 ? credentials.slice(0, colon) : credentials) || undefined;
    password = colon >= 0 ? decodeURIComponent(credentials.slice(colon + 1)) : undefined;
  }
  const nodes = rest.split(',').map((address) => {
    const match = /^([^:]+)(?::(\d+))?$/.exec(address.trim());
    if (!match) throw new Error(`REDIS_URL: "${address}" is not host:port in a redis+cluster:// URL`);
    return { host: match[1]!, port: Number(match[2] ?? 6379) };
  });
  return { nodes, username, password };
}

const COMMAND_TIMED_OUT = 'Command timed out';

export interface ConnectRedisOptions {
  attempts?: number;
  onError?: (error: Error) => void;
  /** Bound on the wait for any reply (`tollgate.redis_command_timeout_ms`). */
  commandTimeoutMs?: number;
}

/**
 * Connects and registers the scripts; rejects when Redis stays unreachable for about ten
 * seconds (long enough for a Redis started alongside, e.g. by docker compose). While the
 * connection is down later, commands fail at once instead of queueing: the hot path answers
 * 503 and settlements go to the catch-up queue. A command whose reply does not come within
 * the command timeout fails the same way, and the silent connection is dropped for a fresh
 * one (a stalled socket may never report an error). Commands whose reply was lost are not
 * resent blindly: the catch-up retries them, and settlement markers make that safe.
 */
export async function connectRedis(url: string, options: ConnectRedisOptions = {}): Promise<ScriptedRedis> {
  const attempts = options.attempts ?? 20;
  const commandTimeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const cluster = clusterNodesOf(url);
  for (let attempt = 1; ; attempt++) {
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      commandTimeout,
      // Reconnect within a second of Redis coming back (the default backs off to 5 s).
      retryStrategy: (times) => Math.min(times * 100, 1000),
    };
    const redis: AnyRedis = cluster
      ? new Cluster(cluster.nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          redisOptions: { ...redisOptions, username: cluster.username, password: cluster.password },
          clusterRetryStrategy: (times) => Math.min(times * 100, 1000),
        })
      : new Redis(url, redisOptions);
    // Connection errors are reported here; without a listener ioredis prints them as unhandled.
    redis.on('error', options.onError ?? (() => {}));
    try {
      await redis.connect();
      reconnectWhenSilent(redis, commandTimeout);
      if (redis instanceof Redis) oneWritePerTurn(redis);
      else redis.on('+node', (node: Redis) => oneWritePerTurn(node));
      return withScripts(redis);
    } catch (error) {
      redis.disconnect();
      if (attempt >= attempts) throw new Error(`cannot reach Redis at REDIS_URL: ${(error as Error).message}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/**
 * The commands one turn of the event loop issues go out in one socket write: the connection
 * is corked at the turn's first command and uncorked once the turn's I/O callbacks have run
 * (at the end of the turn, after the crash journal's write). Under load a write per admission
 * and per settlement was the gateway's largest single CPU cost (bench/profiles/README.md);
 * ioredis's own auto-pipelining flushes on process.nextTick, that is after each request's
 * callback, so it batches nothing here.
 * Each command keeps its own reply, error and timeout (started when it is issued).
 */
function oneWritePerTurn(redis: Redis): void {
  const send = redis.sendCommand.bind(redis);
  let corked: { uncork(): void } | null = null;
  redis.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], stream?: Parameters<Redis['sendCommand']>[1]) => {
    // A pipeline (stream given) writes its commands at once already; a connection not ready
    // does not write at all.
    if (!corked && !stream && redis.status === 'ready' && redis.stream) {
      const socket = redis.stream;
      socket.cork();
      corked = socket;
      // After the turn's journal write: see shared/end-of-turn.ts.
      atEndOfTurn('network', () => {
        corked = null;
        socket.uncork();
      });
    }
    return send(command, stream);
  }) as Redis['sendCommand'];
}

/**
 * After a command timed out, drops the connection and opens a new one (at most once per
 * timeout): a peer that vanished without a FIN/RST would otherwise keep the socket "ready"
 * until TCP keep-alive gives up, minutes later. Commands already sent on the old socket have
 * failed (timed out); whatever Redis applied of them, settlements are idempotent.
 */
function reconnectWhenSilent(redis: AnyRedis, timeoutMs: number): void {
  // A cluster client replaces its node connections by itself on errors; this is for one Redis.
  if (!(redis instanceof Redis)) return;
  let lastReconnect = 0;
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], stream?: Parameters<Redis['sendCommand']>[1]) => {
    const result = send(command, stream);
    command.promise.catch((error: Error) => {
      if (error.message !== COMMAND_TIMED_OUT || redis.status !== 'ready') return;
      const now = Date.now();
      if (now - lastReconnect < timeoutMs) return;
      lastReconnect = now;
      redis.disconnect(true);
    });
    return result;
  }) as Redis['sendCommand'];
}

/**
 * Runs a script; a script error (Redis answered ERR or WRONGTYPE) becomes a
 * `SharedStateRefusal`, so it is never taken for Redis being unreachable. Connection errors,
 * timeouts and the replies of a Redis that cannot serve right now (LOADING, BUSY, OOM,
 * READONLY, CLUSTERDOWN, MOVED …) pass through: those are an outage.
 */
async function script<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof ReplyError && /^(ERR|WRONGTYPE)\b/.test((error as Error).message)) throw new SharedStateRefusal(`Redis refused a shared-state script: ${(error as Error).message}`, { cause: error });
    throw error;
  }
}

export function withScripts(redis: AnyRedis): ScriptedRedis {
  redis.defineCommand('tollgateReserve', { numberOfKeys: 2, lua: RESERVE_SCRIPT });
  redis.defineCommand('tollgateCommit', { numberOfKeys: 4, lua: COMMIT_SCRIPT });
  redis.defineCommand('tollgateRelease', { numberOfKeys: 4, lua: RELEASE_SCRIPT });
  redis.defineCommand('tollgateSpendOf', { numberOfKeys: 1, lua: SPEND_OF_SCRIPT, readOnly: true });
  redis.defineCommand('tollgateSeed', { numberOfKeys: 1, lua: SEED_SCRIPT });
  redis.defineCommand('tollgateAcquire', { numberOfKeys: 3, lua: ACQUIRE_SCRIPT });
  redis.defineCommand('tollgateSettle', { numberOfKeys: 3, lua: SETTLE_SCRIPT });
  redis.defineCommand('tollgateAdmit', { numberOfKeys: 5, lua: ADMIT_SCRIPT });
  redis.defineCommand('tollgateSettleRequest', { numberOfKeys: 7, lua: SETTLE_REQUEST_SCRIPT });
  return redis as ScriptedRedis;
}

const text = (value: Pico | number) => value.toString();
/** A period's end for the scripts: '' when it never ends. */
const periodEndArg = (endMs: number | null | undefined) => (endMs === null || endMs === undefined ? '' : text(endMs));

/** Every key of one customer carries its id as hash tag, so each script touches one cluster slot. */
export function customerKeys(prefix: string, customerId: string, nowMs: number) {
  const window = Math.floor(nowMs / SETTLEMENT_MARKER_TTL_MS);
  const markers = `${prefix}settled:{${customerId}}:`;
  return {
    /** One hash for all the customer's scopes, so forgetting a customer is one DEL (and its leases). */
    counters: `${prefix}spend:{${customerId}}`,
    /** The reservation leases by expiry. */
    leases: `${prefix}leases:{${customerId}}`,
    /**
     * Settlement markers of this window and of the one before: a retry is always checked
     * against both, so a marker is remembered for one to two windows.
     */
    markers: markers + window,
    previousMarkers: markers + (window - 1),
  };
}

/** The three keys of one rate window, under `hashTag` (the customer id, for admissions). */
function rateKeys(prefix: string, hashTag: string, key: string): [string, string, string] {
  const base = hashTag === key ? `${prefix}rate:{${key}}` : `${prefix}rate:{${hashTag}}:${key}`;
  return [`${base}:log`, `${base}:tokens`, `${base}:slots`];
}

const MARKER_TTL_ARG = String(2 * SETTLEMENT_MARKER_TTL_MS + 60_000);

export class RedisSpendBook implements SpendBook {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly prefix = DEFAULT_KEY_PREFIX,
    private readonly leaseTtlMs = RESERVATION_LEASE_TTL_MS,
    /** The clock that picks a settlement's marker window (tests move it). */
    private readonly nowMs: () => number = Date.now,
  ) {}

  private hashKey(customerId: string): string {
    return customerKeys(this.prefix, customerId, 0).counters;
  }

  private leasesKey(customerId: string): string {
    return customerKeys(this.prefix, customerId, 0).leases;
  }

  private markerKeys(customerId: string): [string, string] {
    const keys = customerKeys(this.prefix, customerId, this.nowMs());
    return [keys.markers, keys.previousMarkers];
  }

  async reserve(key: CounterKey, amount: Pico, limit: Pico | null, settlementId: string, options: PeriodEndOptions = {}): Promise<ReserveResult> {
    const [status, spend, reserved] = await script(
      this.redis.tollgateReserve(
        this.hashKey(key.customerId),
        this.leasesKey(key.customerId),
        key.scope,
        text(key.periodStartMs),
        boundedPico(amount, MAX_REQUEST_PICO),
        limit === null ? '' : boundedPico(limit, MAX_LIMIT_PICO),
        settlementId,
        text(this.leaseTtlMs),
        periodEndArg(options.periodEndMs),
      ),
    );
    const result: ReserveResult = { admitted: Number(status) === 1, spend: BigInt(spend!), reserved: BigInt(reserved!) };
    if (Number(status) === 2) result.outOfPeriod = true;
    return result;
  }

  async commit(key: CounterKey, _reservation: Pico, actual: Pico, settlementId: string, options: CommitOptions = {}): Promise<SettledCounter> {
    const [markers, previousMarkers] = this.markerKeys(key.customerId);
    const reply = await script(
      this.redis.tollgateCommit(
        this.hashKey(key.customerId),
        markers,
        previousMarkers,
        this.leasesKey(key.customerId),
        key.scope,
        text(key.periodStartMs),
        boundedPico(actual, MAX_REQUEST_PICO),
        MARKER_TTL_ARG,
        settlementId,
        options.onlyIfPresent ? '1' : '0',
      ),
    );
    return settledCounterOf(reply);
  }

  async release(key: CounterKey, _reservation: Pico, settlementId: string): Promise<void> {
    const [markers, previousMarkers] = this.markerKeys(key.customerId);
    await script(
      this.redis.tollgateRelease(this.hashKey(key.customerId), markers, previousMarkers, this.leasesKey(key.customerId), key.scope, MARKER_TTL_ARG, settlementId),
    );
  }

  async spendOf(key: CounterKey, options: PeriodEndOptions = {}): Promise<Pico> {
    return BigInt(await script(this.redis.tollgateSpendOf(this.hashKey(key.customerId), key.scope, text(key.periodStartMs), periodEndArg(options.periodEndMs))));
  }

  async seed(key: CounterKey, spend: Pico, options: SeedOptions = {}): Promise<void> {
    await script(
      this.redis.tollgateSeed(this.hashKey(key.customerId), key.scope, text(key.periodStartMs), boundedPico(spend, MAX_COUNTER_PICO), options.onlyIfMissing ? '1' : '0', options.periodChanged ? '1' : '0'),
    );
  }

  async forget(customerId: string): Promise<void> {
    // The settlement markers stay (they expire): a late retry must still be recognised.
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
    return rateKeys(this.prefix, key, key);
  }

  async acquire(key: string, limits: RateLimits, estimatedTokens: number, nowMs: number, ticketId: string): Promise<RateDecision> {
    const [log, tokens, slots] = this.keysOf(key);
    const limit = (value: number | null) => (value === null ? '' : boundedCount(value));
    const reply = await script(
      this.redis.tollgateAcquire(
        log,
        tokens,
        slots,
        this.useCallerClock ? text(Math.round(nowMs * 1000)) : '',
        limit(limits.rpm),
        limit(limits.tpm),
        limit(limits.parallel),
        boundedCount(estimatedTokens),
        text(RATE_WINDOW_MS * 1000),
        text(this.parallelSlotTtlMs * 1000),
        ticketMember(ticketId),
      ),
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
    const [, at, remainingRequests, remainingTokens] = reply.map(Number) as number[];
    return {
      ok: true,
      ticket: { key, id: ticketId, tokens: estimatedTokens, at: at!, holdsParallelSlot: true },
      remainingRequests: remainingRequests! < 0 ? null : remainingRequests!,
      remainingTokens: remainingTokens! < 0 ? null : remainingTokens!,
    };
  }

  async settle(ticket: RateTicket, actualTokens: number): Promise<void> {
    // The slot is the ticket's own member, so freeing it again (a retry whose first attempt
    // may or may not have reached Redis) can never free someone else's.
    ticket.holdsParallelSlot = false;
    const [log, tokens, slots] = this.keysOf(ticket.key);
    await script(this.redis.tollgateSettle(log, tokens, slots, ticketMember(ticket.id), boundedCount(actualTokens)));
  }
}

/** Ticket members are prefixed so no ticket id can be taken for the tokens hash's 'total' field. */
function ticketMember(ticketId: string): string {
  return `r:${ticketId}`;
}

/**
 * A request's admission and settlement, each one script (one round trip, one cluster slot):
 * the customer's spend counters (overall, model) and its rate window together. Same keys and
 * semantics as `RedisSpendBook`, whose single-counter scripts still serve seeding, reads and
 * the crash-journal replay; the rate window is the customer's own (hash tag = customer id).
 */
export class RedisAdmissions implements Admissions {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly prefix = DEFAULT_KEY_PREFIX,
    private readonly leaseTtlMs = RESERVATION_LEASE_TTL_MS,
    private readonly options: { useCallerClock?: boolean; parallelSlotTtlMs?: number; nowMs?: () => number } = {},
  ) {}

  async admit(request: AdmissionRequest): Promise<AdmissionOutcome> {
    const keys = customerKeys(this.prefix, request.customerId, 0);
    const rate = request.rate;
    const [log, tokens, slots] = rateKeys(this.prefix, request.customerId, rate?.key ?? '');
    const args = [request.settlementId, text(this.leaseTtlMs), String(request.counters.length)];
    for (const claim of request.counters) {
      args.push(
        claim.key.scope,
        text(claim.key.periodStartMs),
        boundedPico(claim.amount, MAX_REQUEST_PICO),
        claim.limit === null ? '' : boundedPico(claim.limit, MAX_LIMIT_PICO),
        periodEndArg(claim.periodEndMs),
      );
    }
    if (rate) {
      const limit = (value: number | null) => (value === null ? '' : boundedCount(value));
      args.push(
        '1',
        this.options.useCallerClock ? text(Math.round(rate.nowMs * 1000)) : '',
        limit(rate.limits.rpm),
        limit(rate.limits.tpm),
        limit(rate.limits.parallel),
        boundedCount(rate.estimatedTokens),
        text(RATE_WINDOW_MS * 1000),
        text((this.options.parallelSlotTtlMs ?? PARALLEL_SLOT_TTL_MS) * 1000),
        ticketMember(request.settlementId),
      );
    } else args.push('0');
    args.push(request.createMissing === false ? '0' : '1');
    const reply = await script(this.redis.tollgateAdmit(keys.counters, keys.leases, log, tokens, slots, ...args));
    const status = Number(reply[0]);
    if (status === 3) return { admitted: false, refusedBy: 'unseeded', counter: Number(reply[1]) - 1 };
    if (status === 4) return { admitted: false, refusedBy: 'outOfPeriod', counter: Number(reply[1]) - 1 };
    if (status === 2) {
      const [, limitType, limitValue, current, retryAfterMs] = reply;
      return {
        admitted: false,
        refusedBy: 'rate',
        rate: { ok: false, limitType: limitType as 'requests' | 'tokens' | 'parallel_requests', limit: Number(limitValue), current: Number(current), retryAfterMs: Number(retryAfterMs) },
      };
    }
    const first = status === 1 ? 1 : 2;
    const counters: ReserveResult[] = request.counters.map((_, i) => ({
      admitted: status === 1 || i !== Number(reply[1]) - 1,
      spend: BigInt(reply[first + 2 * i]!),
      reserved: BigInt(reply[first + 2 * i + 1]!),
    }));
    if (status === 0) return { admitted: false, refusedBy: 'budget', counter: Number(reply[1]) - 1, counters };
    if (!rate) return { admitted: true, counters, rate: null };
    const [at, remainingRequests, remainingTokens] = reply.slice(first + 2 * request.counters.length).map(Number) as number[];
    return {
      admitted: true,
      counters,
      rate: {
        ok: true,
        ticket: { key: rate.key, id: request.settlementId, tokens: rate.estimatedTokens, at: at!, holdsParallelSlot: true },
        remainingRequests: remainingRequests! < 0 ? null : remainingRequests!,
        remainingTokens: remainingTokens! < 0 ? null : remainingTokens!,
      },
    };
  }

  async settle(settlement: SettlementRequest): Promise<SettledCounter[]> {
    const keys = customerKeys(this.prefix, settlement.customerId, (this.options.nowMs ?? Date.now)());
    const rate = settlement.rate;
    const [log, tokens, slots] = rateKeys(this.prefix, settlement.customerId, rate?.ticket.key ?? '');
    // A release and a commit are never mixed in one settlement (a request is charged or not).
    const commit = settlement.counters.some((counter) => counter.actual !== null);
    const args = [settlement.settlementId, MARKER_TTL_ARG, commit ? 'commit' : 'release', String(settlement.counters.length)];
    for (const counter of settlement.counters) args.push(counter.key.scope, text(counter.key.periodStartMs), boundedPico(counter.actual ?? 0n, MAX_REQUEST_PICO));
    if (rate) {
      rate.ticket.holdsParallelSlot = false;
      args.push('1', ticketMember(rate.ticket.id), boundedCount(rate.actualTokens));
    } else args.push('0');
    const reply = await script(this.redis.tollgateSettleRequest(keys.counters, keys.markers, keys.previousMarkers, keys.leases, log, tokens, slots, ...args));
    return reply.map(settledCounterOf);
  }
}
