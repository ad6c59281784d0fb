/**
 * @module In-process implementations of the shared-state contract. Exact for one process;
 * every method body runs without awaiting, so a check-and-reserve cannot interleave with
 * another (the promises only match the contract the Redis implementation needs).
 */
import type { Pico } from '../shared/money';
import {
  RATE_WINDOW_MS,
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
  type SpendBook,
} from './types';

interface Counter {
  periodStartMs: number;
  spend: Pico;
  reserved: Pico;
  /** When it was last read or written (ms): a counter in use is never forgotten. */
  usedAtMs: number;
  /**
   * The period a budget change moved this counter from (`seed` with `periodChanged`): the
   * requests admitted in it before the change settle here, in the period that replaced it.
   */
  retiredStartMs?: number;
  /** The end of its period as the last admission knew it (null: never ends; absent: unknown). */
  periodEndMs?: number | null;
}

/** Whether the key's period is the counter's (its current one, or the one a change retired). */
function inPeriod(counter: Counter, key: CounterKey): boolean {
  return counter.periodStartMs === key.periodStartMs || counter.retiredStartMs === key.periodStartMs;
}

/** One counter per customer and scope; the customer id comes first so `forget` can match it. */
function counterId(key: CounterKey): string {
  return `${key.customerId}\u0000${key.scope}`;
}

/** The customer of a counter id (customer ids hold no NUL: the store could not keep one). */
function customerOf(id: string): string {
  return id.slice(0, id.indexOf('\u0000'));
}

/** One reservation per request and counter. */
function reservationId(key: CounterKey, settlementId: string): string {
  return `${counterId(key)}\u0000${settlementId}`;
}

/**
 * A pass over a map a few entries at a time, resumed where the last call stopped and started
 * again from the oldest once through: memory follows what is in use, without a timer.
 */
class MapSweep<K, V, C> {
  private cursor: IterableIterator<[K, V]> | null = null;

  constructor(
    private readonly map: Map<K, V>,
    /** Whether the entry may go, given the caller's context of this call (a time). */
    private readonly forgettable: (key: K, value: V, context: C) => boolean,
  ) {}

  /** Examines up to `count` entries, deleting those that may go. */
  run(count: number, context: C): void {
    for (let examined = 0; examined < count; examined++) {
      this.cursor ??= this.map.entries();
      const next = this.cursor.next();
      if (next.done) {
        this.cursor = null;
        return;
      }
      const [key, value] = next.value;
      if (this.forgettable(key, value, context)) this.map.delete(key);
    }
  }
}

/** Counters examined per reservation for one the store holds as well: enough to keep up with new customers. */
const SWEEP_PER_RESERVE = 4;

/** How long a counter must go unused before it may be forgotten. */
export const COUNTER_IDLE_MS = 5 * 60_000;

export interface MemorySpendBookOptions {
  /**
   * Whether the store holds everything this book counts for the customer and the next use
   * of it reads the store first (seeding what the book lacks): then an idle counter of it is
   * forgotten, and read again when needed. Without it, counters stay for the process's life.
   */
  storeHasAll?: (customerId: string) => boolean;
  now?: () => number;
}

export class MemorySpendBook implements SpendBook {
  private readonly counters = new Map<string, Counter>();
  /** What each request reserved under each counter: `<counter id>\u0000<settlement id>` → amount (0 too). */
  private readonly reservations = new Map<string, Pico>();
  /** Reservations outstanding per customer: requests between admission and settlement. */
  private readonly openReservations = new Map<string, number>();
  private readonly idleCounters = new MapSweep(this.counters, (id: string, counter: Counter, horizon: number) => this.forgettable(id, counter, horizon));
  private readonly storeHasAll: ((customerId: string) => boolean) | null;
  private readonly now: () => number;

  constructor(options: MemorySpendBookOptions = {}) {
    this.storeHasAll = options.storeHasAll ?? null;
    this.now = options.now ?? Date.now;
  }

  /** Forgets the request's reservation under `key`; returns what it held (0 if none). */
  private takeReservation(key: CounterKey, settlementId: string): Pico {
    const id = reservationId(key, settlementId);
    const amount = this.reservations.get(id);
    if (amount === undefined) return 0n;
    this.reservations.delete(id);
    const open = (this.openReservations.get(key.customerId) ?? 1) - 1;
    if (open > 0) this.openReservations.set(key.customerId, open);
    else this.openReservations.delete(key.customerId);
    return amount;
  }

  private counter(key: CounterKey): Counter {
    const id = counterId(key);
    let counter = this.counters.get(id);
    if (!counter || (counter.periodStartMs < key.periodStartMs && !inPeriod(counter, key))) {
      // A new period starts from zero; reservations of the old period settle into the old one.
      counter = { periodStartMs: key.periodStartMs, spend: 0n, reserved: 0n, usedAtMs: 0 };
      this.counters.set(id, counter);
    }
    counter.usedAtMs = this.now();
    return counter;
  }

  /** A request admitted in an older period than the counter's current one. */
  private isStale(key: CounterKey): boolean {
    const counter = this.counters.get(counterId(key));
    return counter !== undefined && counter.periodStartMs > key.periodStartMs && !inPeriod(counter, key);
  }

  /** A counter in a later period that starts inside the key's (its spend is all the key's period's). */
  private laterInside(counter: Counter | undefined, key: CounterKey, periodEndMs: number | null): counter is Counter {
    if (!counter || counter.periodStartMs <= key.periodStartMs || inPeriod(counter, key)) return false;
    return periodEndMs === null || counter.periodStartMs < periodEndMs;
  }

  /**
   * A counter in a period its budget no longer has (ReserveResult.outOfPeriod): a later one that
   * starts inside the key's; or, with requests in flight, an earlier one that had not ended when
   * the key's began (a change moved the start later: what is in flight is the new period's).
   */
  private outOfPeriod(counter: Counter | undefined, key: CounterKey, periodEndMs: number | null): counter is Counter {
    if (!counter || inPeriod(counter, key)) return false;
    if (counter.periodStartMs > key.periodStartMs) return this.laterInside(counter, key, periodEndMs);
    const ends = counter.periodEndMs;
    return ends !== undefined && (ends === null || ends > key.periodStartMs) && counter.reserved > 0n;
  }

  /**
   * Forgets up to `count` counters the store can give back: unused for COUNTER_IDLE_MS, no
   * request of the customer between admission and settlement, and `storeHasAll` true (its
   * ledger rows committed, so the stored counter equals this one, and not cached, so its next
   * request reads the store and seeds it again). Without this every customer ever served
   * kept its counters here for the life of the process.
   */
  private sweepIdle(count: number): void {
    if (this.storeHasAll) this.idleCounters.run(count, this.now() - COUNTER_IDLE_MS);
  }

  private forgettable(id: string, counter: Counter, horizon: number): boolean {
    if (counter.usedAtMs > horizon || counter.reserved !== 0n) return false;
    const customerId = customerOf(id);
    return !this.openReservations.has(customerId) && this.storeHasAll!(customerId);
  }

  /** How many counters are held (for tests of the sweep). */
  get counterCount(): number {
    return this.counters.size;
  }

  /** Whether any counter of the customer is held, without touching it (for tests of the sweep). */
  holdsAnyOf(customerId: string): boolean {
    for (const id of this.counters.keys()) if (customerOf(id) === customerId) return true;
    return false;
  }

  async reserve(key: CounterKey, amount: Pico, limit: Pico | null, settlementId: string, options: PeriodEndOptions = {}): Promise<ReserveResult> {
    this.sweepIdle(SWEEP_PER_RESERVE);
    const existing = this.counters.get(counterId(key));
    if (this.outOfPeriod(existing, key, options.periodEndMs ?? null)) return { admitted: false, outOfPeriod: true, spend: existing.spend, reserved: existing.reserved };
    const counter = this.counter(key);
    if (limit !== null && counter.spend + counter.reserved >= limit) {
      return { admitted: false, spend: counter.spend, reserved: counter.reserved };
    }
    // Recorded even when nothing is reserved: while it is open, the customer's counters stay.
    counter.reserved += amount - this.takeReservation(key, settlementId); // a repeat replaces it
    counter.periodEndMs = options.periodEndMs ?? null;
    this.reservations.set(reservationId(key, settlementId), amount);
    this.openReservations.set(key.customerId, (this.openReservations.get(key.customerId) ?? 0) + 1);
    return { admitted: true, spend: counter.spend, reserved: counter.reserved };
  }

  // One process never retries a settlement after a lost reply; the reservation record
  // alone makes a second settlement give nothing back.
  async commit(key: CounterKey, _reservation: Pico, actual: Pico, settlementId: string, options: CommitOptions = {}): Promise<SettledCounter> {
    const present = this.counters.has(counterId(key));
    if (options.onlyIfPresent && !present) return { spend: 0n, periodStartMs: key.periodStartMs };
    const held = this.takeReservation(key, settlementId);
    // Belongs to a finished period: the ledger keeps it there. Or the counter is gone (its
    // customer deleted while the request ran): not created again from zero, which a later
    // seed from the store would leave alone; the ledger row carries the charge to the store.
    if (this.isStale(key) || !present) return { spend: actual, periodStartMs: key.periodStartMs };
    const counter = this.counter(key);
    counter.reserved -= held;
    if (counter.reserved < 0n) counter.reserved = 0n;
    counter.spend += actual;
    // The counter's own period: the key's, or the one a budget change moved it to meanwhile.
    return { spend: counter.spend, periodStartMs: counter.periodStartMs };
  }

  async release(key: CounterKey, _reservation: Pico, settlementId: string): Promise<void> {
    const held = this.takeReservation(key, settlementId);
    // Nothing held (a crashed process's request, released at restart): no counter to create,
    // which would stop start-up seeding it from the store.
    if (held === 0n || this.isStale(key)) return;
    const counter = this.counter(key);
    counter.reserved -= held;
    if (counter.reserved < 0n) counter.reserved = 0n;
  }

  async spendOf(key: CounterKey, options: PeriodEndOptions = {}): Promise<Pico> {
    const counter = this.counters.get(counterId(key));
    if (!counter || !(inPeriod(counter, key) || this.laterInside(counter, key, options.periodEndMs ?? null))) return 0n;
    counter.usedAtMs = this.now();
    return counter.spend;
  }

  async seed(key: CounterKey, spend: Pico, options: SeedOptions = {}): Promise<void> {
    const existing = this.counters.get(counterId(key));
    if (options.periodChanged && existing && existing.periodStartMs !== key.periodStartMs) {
      // The key's period is now the current one, earlier or later than the counter's: it counts
      // from the store's sum since its start (or, moving to an earlier start, the live spend of
      // the old period inside it, when larger); what is in flight stays reserved, and settles here.
      const earlier = key.periodStartMs < existing.periodStartMs && existing.spend > spend;
      this.counters.set(counterId(key), {
        periodStartMs: key.periodStartMs,
        spend: earlier ? existing.spend : spend,
        reserved: existing.reserved,
        usedAtMs: this.now(),
        retiredStartMs: existing.periodStartMs,
      });
      return;
    }
    // One counter per customer and scope: one of an older period is missing for this one (a
    // budget's period just changed); one of this period or a later one is live, kept.
    if (options.onlyIfMissing && existing && existing.periodStartMs >= key.periodStartMs) {
      existing.usedAtMs = this.now(); // seeded for a read that follows (a listing): kept for it
      return;
    }
    if (this.isStale(key)) return;
    this.counter(key).spend = spend;
  }

  async forget(customerId: string): Promise<void> {
    for (const id of this.counters.keys()) if (id.startsWith(`${customerId}\u0000`)) this.counters.delete(id);
    for (const id of this.reservations.keys()) if (id.startsWith(`${customerId}\u0000`)) this.reservations.delete(id);
    this.openReservations.delete(customerId);
  }
}

interface WindowEntry {
  id: string;
  at: number;
  tokens: number;
}

interface KeyWindow {
  entries: WindowEntry[]; // ordered by `at`
  head: number; // index of the oldest live entry (amortised O(1) pruning)
  tokens: number; // sum of live entries' tokens
  /** Tickets holding a parallel slot (settling frees a slot only for a ticket that holds one). */
  inFlight: Set<string>;
  byId: Map<string, WindowEntry>;
}

/** Windows examined for deletion per admission: enough to keep up with new customers. */
const SWEEP_PER_ACQUIRE = 4;

/**
 * Sliding-log limiter: "rpm_limit requests and tpm_limit tokens in any 60-second window",
 * exactly, not a fixed window that admits twice the limit across its edge.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, KeyWindow>();
  private readonly idleWindows = new MapSweep(this.windows, (_key: string, window: KeyWindow, nowMs: number) => {
    this.prune(window, nowMs);
    return window.head === window.entries.length && window.inFlight.size === 0;
  });

  private window(key: string, nowMs: number): KeyWindow {
    let window = this.windows.get(key);
    if (!window) {
      window = { entries: [], head: 0, tokens: 0, inFlight: new Set(), byId: new Map() };
      this.windows.set(key, window);
    }
    this.prune(window, nowMs);
    return window;
  }

  /** Drops the window's entries that have left the last 60 s. */
  private prune(window: KeyWindow, nowMs: number): void {
    const horizon = nowMs - RATE_WINDOW_MS;
    while (window.head < window.entries.length && window.entries[window.head]!.at <= horizon) {
      const expired = window.entries[window.head++]!;
      window.tokens -= expired.tokens;
      window.byId.delete(expired.id);
    }
    if (window.head > 1024 && window.head * 2 > window.entries.length) {
      window.entries = window.entries.slice(window.head);
      window.head = 0;
    }
  }

  /**
   * Deletes up to `count` windows that hold nothing any more (no request in the last 60 s, no
   * parallel slot taken): an empty window is what a new one would be. Without this, every
   * customer ever served kept ~1 KB here for the life of the process; each admission sweeps a
   * few, so memory follows the customers active in the last minute, without a timer.
   */
  private sweepIdle(nowMs: number, count: number): void {
    this.idleWindows.run(count, nowMs);
  }

  /** How many windows are held (for tests of the sweep). */
  get windowCount(): number {
    return this.windows.size;
  }

  async acquire(key: string, limits: RateLimits, estimatedTokens: number, nowMs: number, ticketId: string): Promise<RateDecision> {
    this.sweepIdle(nowMs, SWEEP_PER_ACQUIRE);
    const window = this.window(key, nowMs);
    const count = window.entries.length - window.head;
    if (limits.parallel !== null && window.inFlight.size >= limits.parallel) {
      return { ok: false, limitType: 'parallel_requests', limit: limits.parallel, current: window.inFlight.size, retryAfterMs: 1000 };
    }
    if (limits.rpm !== null && count >= limits.rpm) {
      const oldest = window.entries[window.entries.length - limits.rpm]!;
      return { ok: false, limitType: 'requests', limit: limits.rpm, current: count, retryAfterMs: Math.max(1, oldest.at + RATE_WINDOW_MS - nowMs) };
    }
    // Same rule as dollar budgets: admit while the window (settled + reserved) is under the limit.
    if (limits.tpm !== null && window.tokens >= limits.tpm) {
      return { ok: false, limitType: 'tokens', limit: limits.tpm, current: window.tokens, retryAfterMs: this.tokenRetryAfter(window, limits.tpm, nowMs) };
    }
    // A ticket id admits once (as in Redis): a repeat is answered without counting it again.
    if (!window.byId.has(ticketId)) {
      const entry: WindowEntry = { id: ticketId, at: nowMs, tokens: estimatedTokens };
      window.entries.push(entry);
      window.byId.set(entry.id, entry);
      window.tokens += estimatedTokens;
      window.inFlight.add(ticketId);
    }
    return {
      ok: true,
      ticket: { key, id: ticketId, tokens: estimatedTokens, at: nowMs, holdsParallelSlot: true },
      remainingRequests: limits.rpm === null ? null : limits.rpm - count - 1,
      remainingTokens: limits.tpm === null ? null : Math.max(0, limits.tpm - window.tokens),
    };
  }

  /** When enough tokens will have left the window to drop below the limit. */
  private tokenRetryAfter(window: KeyWindow, limit: number, nowMs: number): number {
    let tokens = window.tokens;
    for (let i = window.head; i < window.entries.length; i++) {
      const entry = window.entries[i]!;
      tokens -= entry.tokens;
      if (tokens < limit) return Math.max(1, entry.at + RATE_WINDOW_MS - nowMs);
    }
    return RATE_WINDOW_MS;
  }

  async settle(ticket: RateTicket, actualTokens: number): Promise<void> {
    const window = this.windows.get(ticket.key);
    if (!window) return;
    // Only the ticket's own slot, so settling twice frees one slot at most.
    window.inFlight.delete(ticket.id);
    ticket.holdsParallelSlot = false;
    const entry = window.byId.get(ticket.id);
    if (entry) {
      window.tokens += actualTokens - entry.tokens;
      entry.tokens = actualTokens;
    }
  }
}
