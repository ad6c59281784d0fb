/**
 * @module Prepaid credits, as governance decides on them. A customer's balance is made of
 * grants; what it consumed is the `credits` counter (the charges of its requests admitted
 * against credits, period start 0, never reset), shared like any spend counter. The counter's
 * limit is what the grants make usable: every active grant's amount, plus what inactive
 * (expired or voided) grants had consumed — so their unconsumed remainder leaves the balance,
 * and what was consumed stays consumed. Balance = limit − consumed.
 *
 * How consumption is spread over grants is worked out from the ledger (`allocateCredits`):
 * its charges in time order, each paid from the grants active then, the one expiring first
 * first. The ledger is the truth, so a crash loses nothing and counts nothing twice.
 */
import { LRUCache } from 'lru-cache';
import type { Pico } from '../shared/money';

export { CREDITS_SCOPE } from '../ledger/types';

export type GrantKind = 'paid' | 'promotional';
export const GRANT_KINDS: readonly GrantKind[] = ['paid', 'promotional'];

export interface GrantRecord {
  id: string;
  customerId: string;
  reference: string;
  amount: Pico;
  kind: GrantKind;
  expiresAt: Date | null;
  voidedAt: Date | null;
  createdBy: string | null;
  createdAt: Date;
}

export interface GrantAllocation extends GrantRecord {
  /** What the ledger's charges consumed of it (as of `CreditState.computedAtMs`). */
  consumed: Pico;
}

export interface CreditState {
  customerId: string;
  /** Ordered as they are consumed: earliest expiry first (no expiry last), then oldest. */
  grants: GrantAllocation[];
  /** Charges no grant covered (the one request that may overshoot), paid by the next grant. */
  debt: Pico;
  computedAtMs: number;
}

/** Whether the grant can be spent at `atMs`. */
export function isActive(grant: GrantRecord, atMs: number): boolean {
  return grant.createdAt.getTime() <= atMs && (grant.expiresAt === null || grant.expiresAt.getTime() > atMs) && (grant.voidedAt === null || grant.voidedAt.getTime() > atMs);
}

/** Consumption order: the grant that expires first is used first. */
export function consumptionOrder(a: GrantRecord, b: GrantRecord): number {
  const ea = a.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  const eb = b.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  if (ea !== eb) return ea < eb ? -1 : 1;
  if (a.createdAt.getTime() !== b.createdAt.getTime()) return a.createdAt.getTime() - b.createdAt.getTime();
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The instants the set of spendable grants changes, up to `nowMs`, ascending: the intervals the
 * ledger's charges are summed over (`width_bucket` on these: bucket i ≥ 1 starts at boundaries[i-1]).
 */
export function allocationBoundaries(grants: GrantRecord[], nowMs: number): number[] {
  const instants = new Set<number>();
  for (const grant of grants) {
    instants.add(grant.createdAt.getTime());
    if (grant.expiresAt && grant.expiresAt.getTime() <= nowMs) instants.add(grant.expiresAt.getTime());
    if (grant.voidedAt) instants.add(grant.voidedAt.getTime());
  }
  return [...instants].filter((ms) => ms <= nowMs).sort((a, b) => a - b);
}

/**
 * Spreads the charges over the grants: `chargesByBucket[i]` is the credits charged in bucket i
 * of `boundaries` (0: before the first grant). Each interval's charges go to the grants active
 * at its start, earliest expiry first; what none covers is debt, which the next grant pays first.
 */
export function allocateCredits(grants: GrantRecord[], boundaries: number[], chargesByBucket: Map<number, Pico>, computedAtMs: number, customerId: string): CreditState {
  const ordered = [...grants].sort(consumptionOrder);
  const consumed = new Map<string, Pico>(ordered.map((grant) => [grant.id, 0n]));
  let debt = chargesByBucket.get(0) ?? 0n;
  const pay = (active: GrantRecord[], amount: Pico): Pico => {
    let left = amount;
    for (const grant of active) {
      if (left === 0n) break;
      const used = consumed.get(grant.id)!;
      const take = grant.amount - used < left ? grant.amount - used : left;
      if (take > 0n) {
        consumed.set(grant.id, used + take);
        left -= take;
      }
    }
    return left;
  };
  for (let bucket = 1; bucket <= boundaries.length; bucket++) {
    const start = boundaries[bucket - 1]!;
    const active = ordered.filter((grant) => isActive(grant, start));
    debt = pay(active, debt);
    debt += pay(active, chargesByBucket.get(bucket) ?? 0n);
  }
  return { customerId, grants: ordered.map((grant) => ({ ...grant, consumed: consumed.get(grant.id)! })), debt, computedAtMs };
}

/**
 * The credits counter's limit at `atMs`: active grants' amounts, plus what inactive grants had
 * consumed. For a grant that expired after the state was computed, what it had consumed then
 * (a lower bound until the state is computed again: never more credit than there is).
 */
export function creditLimit(state: CreditState, atMs: number): Pico {
  let limit = 0n;
  for (const grant of state.grants) limit += isActive(grant, atMs) ? grant.amount : grant.consumed;
  return limit;
}

/** The latest grant's creation: a new grant starts a new "grant period" (credit alerts fire once per period). */
export function grantPeriodOf(grants: GrantRecord[]): Date | null {
  let latest: Date | null = null;
  for (const grant of grants) if (grant.voidedAt === null && (!latest || grant.createdAt > latest)) latest = grant.createdAt;
  return latest;
}

/** How long after an expiry a process recomputes the state: the ledger's batches have landed by then. */
export const EXPIRY_SETTLE_MS = 2_000;

export type CreditLoader = (customerIds: string[], now: Date) => Promise<Map<string, CreditState>>;

/**
 * The credit states this process uses to admit prepaid customers: a bounded LRU like the
 * customer cache, read from the store on a miss, reloaded on a change notice ('credits') and
 * shortly after one of its grants expires.
 */
export class CreditBook {
  private readonly states: LRUCache<string, CreditState>;
  private readonly loading = new Map<string, Promise<CreditState>>();
  private loader: CreditLoader = async (ids, now) => new Map(ids.map((id) => [id, { customerId: id, grants: [], debt: 0n, computedAtMs: now.getTime() }]));

  constructor(maxSize: number) {
    this.states = new LRUCache({ max: maxSize });
  }

  attach(loader: CreditLoader): void {
    this.loader = loader;
  }

  tracks(customerId: string): boolean {
    return this.states.has(customerId) || this.loading.has(customerId);
  }

  /** The state to admit with: cached (no await), else read; a stale one (a grant expired since) is re-read in the background. */
  async get(customerId: string, now: Date): Promise<CreditState> {
    const state = this.states.get(customerId);
    if (!state) return this.load(customerId, now);
    if (needsRefresh(state, now.getTime())) void this.load(customerId, now).catch(() => undefined);
    return state;
  }

  peek(customerId: string): CreditState | undefined {
    return this.states.peek(customerId);
  }

  set(state: CreditState): void {
    this.states.set(state.customerId, state);
  }

  delete(customerId: string): void {
    this.states.delete(customerId);
  }

  /** Reads again the states this process holds among `ids` (a change another process announced). */
  async reload(ids: string[], now: Date): Promise<void> {
    const tracked = ids.filter((id) => this.tracks(id));
    if (!tracked.length) return;
    const fresh = await this.loader(tracked, now);
    for (const id of tracked) {
      const state = fresh.get(id);
      if (state) this.states.set(id, state);
      else this.states.delete(id);
    }
  }

  private load(customerId: string, now: Date): Promise<CreditState> {
    const inFlight = this.loading.get(customerId);
    if (inFlight) return inFlight;
    const promise = this.loader([customerId], now)
      .then((states) => {
        const state = states.get(customerId) ?? { customerId, grants: [], debt: 0n, computedAtMs: now.getTime() };
        this.states.set(customerId, state);
        return state;
      })
      .finally(() => this.loading.delete(customerId));
    this.loading.set(customerId, promise);
    return promise;
  }
}

/**
 * A grant expired since the state was computed (or too shortly before it for the ledger to have
 * had its last charges), and long enough ago now that the ledger has them.
 */
function needsRefresh(state: CreditState, nowMs: number): boolean {
  return state.grants.some((grant) => {
    if (grant.expiresAt === null) return false;
    const settledAt = grant.expiresAt.getTime() + EXPIRY_SETTLE_MS;
    return settledAt > state.computedAtMs && settledAt <= nowMs;
  });
}
