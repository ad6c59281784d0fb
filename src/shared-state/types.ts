/**
 * @module The state the hot path needs, behind small interfaces: spend per customer period
 * with reservations, and request/token/parallel limits. `memory.ts` serves one process;
 * `redis.ts` implements the same contract so they are exact across proxies. The methods
 * return promises because the Redis implementation answers over the network; each call is
 * still atomic on its own.
 */
import type { Pico } from '../shared/money';

/** Identifies one spend counter: a customer and a scope ('' = all models, 'model:<name>'). */
export interface CounterKey {
  customerId: string;
  scope: string;
  /** Start of the budget period the counter belongs to (ms since epoch). */
  periodStartMs: number;
}

/**
 * Where a settlement counted: the counter's settled spend after it, and the period it counted
 * into. That is the period the request was admitted in, or, when a budget change moved the
 * counter to another period while the request ran, the period that replaced it: the ledger
 * adds the charge to the stored counter of that period too, so the store agrees with the book.
 */
export interface SettledCounter {
  spend: Pico;
  periodStartMs: number;
}

export interface ReserveResult {
  admitted: boolean;
  /** Settled spend in the period (excludes reservations). */
  spend: Pico;
  /** Outstanding reservations in the period, including this one when admitted. */
  reserved: Pico;
  /**
   * Not admitted, nothing taken: the counter is in a period its budget no longer has, one a
   * change left it in because the customer had no spend since the new start in the store: a
   * later period that starts inside the key's own (before `periodEndMs`; the start moved
   * earlier), or, while requests are in flight, an earlier one that had not ended when the key's
   * began (the start moved later; its end as the last reservation was told it). It must be moved
   * (a recompute) before admission, so what it counted or has in flight lands in the key's period.
   */
  outOfPeriod?: boolean;
}

export interface PeriodEndOptions {
  /** End of the key's period (exclusive, ms; remembered with the counter by a reservation). Absent or null: the period never ends. */
  periodEndMs?: number | null;
}

/**
 * Reservations belong to the request that took them (`settlementId`, the request id): a
 * settlement gives back what that request reserved under that key, once, and nothing for a
 * request that reserved nothing there. The Redis book also gives back, after a lease time,
 * the reservations of a proxy that died before settling.
 */
export interface CommitOptions {
  /**
   * Apply only to a counter that exists already (replaying a crash journal at start-up: a
   * counter the book lacks is seeded from the store afterwards, and the store has the charge).
   */
  onlyIfPresent?: boolean;
}

export interface SeedOptions {
  /** Leave a counter that already exists alone (start-up seeding, a cache miss). */
  onlyIfMissing?: boolean;
  /**
   * The key's period is now the current one (a budget's period changed, and `spend` is the
   * store's sum since its start): a counter of another period, earlier or later, moves to it,
   * keeping its reservations; requests admitted in the old period settle into the new one.
   * Moving to an earlier start, the old period lies inside the new one, so its live spend is
   * part of the new period's too: the counter keeps the larger of the two (the store's sum
   * lacks what other processes have not flushed yet).
   * A counter already of this period is left alone (it is live, ahead of the store).
   */
  periodChanged?: boolean;
}

export interface SpendBook {
  /**
   * Admits when there is no limit, or settled spend + outstanding reservations < limit;
   * then reserves `amount` for `settlementId`. Atomic per key.
   */
  reserve(key: CounterKey, amount: Pico, limit: Pico | null, settlementId: string, options?: PeriodEndOptions): Promise<ReserveResult>;
  /**
   * Replaces the request's reservation with the actual cost; returns the new settled spend of
   * the period it counted into. A reservation of an older period than the counter's is not
   * applied (the ledger keeps it there: that period and `actual` are returned), nor is one
   * whose counter is gone (its customer forgotten, or Redis's data lost, while it ran): it is
   * not created again from zero, so the next seed fills it from the store. `reservation` is
   * the amount reserved (implementations may rely on their record).
   */
  commit(key: CounterKey, reservation: Pico, actual: Pico, settlementId: string, options?: CommitOptions): Promise<SettledCounter>;
  /**
   * Gives the request's reservation back. An implementation that can see a retry of a call
   * whose reply was lost (Redis) applies each settlement once.
   */
  release(key: CounterKey, reservation: Pico, settlementId: string): Promise<void>;
  /**
   * Settled spend of the key's period: its counter's, or that of a counter out of the period
   * (ReserveResult.outOfPeriod: its later period lies inside the key's, so all it counted is the
   * key's period's too); 0 for a counter of another period.
   */
  spendOf(key: CounterKey, options?: PeriodEndOptions): Promise<Pico>;
  /**
   * Sets settled spend from the store (recompute); keeps reservations; ignored for an older
   * period than the counter's. With `onlyIfMissing` (start-up seeding) it leaves a counter that
   * already exists alone: with shared counters, other proxies' live values win over the store,
   * which lags behind by one ledger flush.
   */
  seed(key: CounterKey, spend: Pico, options?: SeedOptions): Promise<void>;
  forget(customerId: string): Promise<void>;
}

export interface RateLimits {
  rpm: number | null;
  tpm: number | null;
  parallel: number | null;
}

export interface RateTicket {
  key: string;
  /** Chosen by the caller (the request id), so a ticket whose admission reply was lost can still be settled. */
  id: string;
  tokens: number;
  at: number;
  holdsParallelSlot: boolean;
}

export type RateDecision =
  | { ok: true; ticket: RateTicket; remainingRequests: number | null; remainingTokens: number | null }
  | { ok: false; limitType: 'requests' | 'tokens' | 'parallel_requests'; limit: number; current: number; retryAfterMs: number };

export interface RateLimiter {
  /**
   * Checks every limit of the key at once and, when all pass, records the request and
   * reserves its estimated tokens. Admits while tokens in the window (settled + reserved)
   * are below tpm, and fewer than rpm requests started in the last 60 s. A ticket id admits
   * once.
   */
  acquire(key: string, limits: RateLimits, estimatedTokens: number, nowMs: number, ticketId: string): Promise<RateDecision>;
  /**
   * Trues up the token reservation to actual usage and frees the parallel slot. Repeatable, and
   * harmless for a ticket that was never admitted (an admission whose reply was lost).
   */
  settle(ticket: RateTicket, actualTokens: number): Promise<void>;
}

export const RATE_WINDOW_MS = 60_000;

/**
 * How long a shared-state command may wait for its reply before it fails (and the fail mode
 * applies). A silently stalled connection (socket open, no bytes) would otherwise hold every
 * request for as long as it stalls.
 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;

/**
 * The shared state answered, but refused the operation (a script error in Redis). It is not an
 * outage: the fail mode does not apply, and retrying the same operation would fail again.
 */
export class SharedStateRefusal extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SharedStateRefusal';
  }
}

export function isSharedStateRefusal(error: unknown): error is SharedStateRefusal {
  return error instanceof SharedStateRefusal;
}

/** One spend counter a request is admitted against: what it reserves there, under which limit. */
export interface CounterClaim {
  key: CounterKey;
  amount: Pico;
  limit: Pico | null;
  /** End of the key's period (exclusive, ms; PeriodEndOptions.periodEndMs); absent or null: never ends. */
  periodEndMs?: number | null;
}

/** Everything one request asks of the shared state to be admitted. All counters are one customer's. */
export interface AdmissionRequest {
  customerId: string;
  /** The request id: names its reservations and its rate ticket. */
  settlementId: string;
  counters: CounterClaim[];
  rate: { key: string; limits: RateLimits; estimatedTokens: number; nowMs: number } | null;
  /**
   * Whether a counter the shared state lacks may start from zero here: true when the customer
   * was read from the store for this request (its stored counters seeded just before). False
   * for a cached customer: a counter missing then is one a restarted Redis lost, and admitting
   * from zero would forget the period's spend (a seed afterwards leaves it alone), so the
   * admission answers `unseeded` instead. The in-process book never loses one.
   */
  createMissing?: boolean;
}

export type AdmissionOutcome =
  /** `counters[i]` answers `request.counters[i]` (with this request's reservation included). */
  | { admitted: true; counters: ReserveResult[]; rate: Extract<RateDecision, { ok: true }> | null }
  | { admitted: false; refusedBy: 'budget'; counter: number; counters: ReserveResult[] }
  | { admitted: false; refusedBy: 'rate'; rate: Extract<RateDecision, { ok: false }> }
  /** Nothing taken: a counter is missing and `createMissing` was not set. */
  | { admitted: false; refusedBy: 'unseeded'; counter: number }
  /** Nothing taken: a counter is in a period its budget no longer has (ReserveResult.outOfPeriod). */
  | { admitted: false; refusedBy: 'outOfPeriod'; counter: number };

/** How a request ends in the shared state: each counter charged its actual cost (or released), its ticket trued up. */
export interface SettlementRequest {
  customerId: string;
  settlementId: string;
  /** `actual: null` releases the counter's reservation without charging. */
  counters: { key: CounterKey; reservation: Pico; actual: Pico | null }[];
  rate: { ticket: RateTicket; actualTokens: number } | null;
}

/**
 * A request's admission and settlement as single operations: a refusal leaves nothing
 * reserved, and with Redis each is one round trip (one script on one cluster slot). With
 * Redis both are idempotent per settlement id, so a call whose reply was lost can be repeated
 * (in one process no reply is lost, and nothing is repeated).
 */
export interface Admissions {
  admit(request: AdmissionRequest): Promise<AdmissionOutcome>;
  /** Returns where each counter's charge counted (spend 0 and the key's period for a released one). */
  settle(settlement: SettlementRequest): Promise<SettledCounter[]>;
}
