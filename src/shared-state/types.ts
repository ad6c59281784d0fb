/**
 * @module The state the hot path needs, behind small interfaces: spend per customer period
 * with reservations, and request/token/parallel limits. `memory.ts` serves one process; a
 * Redis implementation of the same contract makes them exact across proxies.
 */
import type { Pico } from '../shared/money';

/** Identifies one spend counter: a customer and a scope ('' = all models, 'model:<name>'). */
export interface CounterKey {
  customerId: string;
  scope: string;
  /** Start of the budget period the counter belongs to (ms since epoch). */
  periodStartMs: number;
}

export interface ReserveResult {
  admitted: boolean;
  /** Settled spend in the period (excludes reservations). */
  spend: Pico;
  /** Outstanding reservations in the period, including this one when admitted. */
  reserved: Pico;
}

export interface SpendBook {
  /**
   * Admits when there is no limit, or settled spend + outstanding reservations < limit;
   * then reserves `amount`. Atomic per key.
   */
  reserve(key: CounterKey, amount: Pico, limit: Pico | null): ReserveResult;
  /** Replaces a reservation with the actual cost; returns the period's new settled spend. */
  commit(key: CounterKey, reservation: Pico, actual: Pico): Pico;
  release(key: CounterKey, reservation: Pico): void;
  spendOf(key: CounterKey): Pico;
  /** Sets settled spend from the store (start-up, recompute); keeps reservations. */
  seed(key: CounterKey, spend: Pico): void;
  forget(customerId: string): void;
}

export interface RateLimits {
  rpm: number | null;
  tpm: number | null;
  parallel: number | null;
}

export interface RateTicket {
  key: string;
  id: number;
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
   * are below tpm, and fewer than rpm requests started in the last 60 s.
   */
  acquire(key: string, limits: RateLimits, estimatedTokens: number, nowMs: number): RateDecision;
  /** Trues up the token reservation to actual usage and frees the parallel slot. */
  settle(ticket: RateTicket, actualTokens: number): void;
}

export const RATE_WINDOW_MS = 60_000;
