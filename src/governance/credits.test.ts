import { describe, expect, it } from 'vitest';
import { allocateCredits, allocationBoundaries, creditLimit, type GrantRecord } from './credits';

const T0 = Date.UTC(2026, 11, 1);
function grant(id: string, amount: bigint, createdAt: number, options: { expiresAt?: number; voidedAt?: number } = {}): GrantRecord {
  return {
    id,
    customerId: 'c',
    reference: id,
    amount,
    kind: 'paid',
    expiresAt: options.expiresAt === undefined ? null : new Date(options.expiresAt),
    voidedAt: options.voidedAt === undefined ? null : new Date(options.voidedAt),
    createdBy: null,
    createdAt: new Date(createdAt),
  };
}

/** Charges per bucket of the boundaries, from (time, amount) pairs (what the SQL's width_bucket does). */
function bucketed(boundaries: number[], charges: [number, bigint][]): Map<number, bigint> {
  const result = new Map<number, bigint>();
  for (const [at, amount] of charges) {
    const bucket = boundaries.filter((b) => b <= at).length;
    result.set(bucket, (result.get(bucket) ?? 0n) + amount);
  }
  return result;
}

describe('credit allocation', () => {
  it('uses the grant that expires first, then the others; the limit is active amounts plus what inactive grants consumed', () => {
    const grants = [grant('forever', 100n, T0), grant('soon', 50n, T0 + 10, { expiresAt: T0 + 1000 })];
    const now = T0 + 2000;
    const boundaries = allocationBoundaries(grants, now);
    expect(boundaries).toEqual([T0, T0 + 10, T0 + 1000]);
    const state = allocateCredits(grants, boundaries, bucketed(boundaries, [[T0 + 5, 7n], [T0 + 20, 30n], [T0 + 500, 30n], [T0 + 1500, 5n]]), now, 'c');
    const of = (id: string) => state.grants.find((g) => g.id === id)!.consumed;
    // 7 before "soon" existed went to "forever"; then 50 of "soon" (10 of the 60 to "forever"); after its expiry 5 more.
    expect(of('soon')).toBe(50n);
    expect(of('forever')).toBe(7n + 10n + 5n);
    expect(state.debt).toBe(0n);
    expect(state.grants.map((g) => g.id)).toEqual(['soon', 'forever']);
    expect(creditLimit(state, now)).toBe(100n + 50n);
    // Balance = limit − consumed = 150 − 72 = 78 = what "forever" has left.
    expect(creditLimit(state, now) - 72n).toBe(100n - of('forever'));
  });

  it("drops an expired grant's unconsumed remainder, keeps a voided grant's consumption, and carries overshoot to the next grant", () => {
    const grants = [grant('a', 10n, T0, { expiresAt: T0 + 100 }), grant('b', 10n, T0 + 200, { voidedAt: T0 + 300 }), grant('c', 20n, T0 + 400)];
    const now = T0 + 500;
    const boundaries = allocationBoundaries(grants, now);
    const state = allocateCredits(grants, boundaries, bucketed(boundaries, [[T0 + 50, 4n], [T0 + 250, 13n]]), now, 'c');
    const of = (id: string) => state.grants.find((g) => g.id === id)!.consumed;
    expect(of('a')).toBe(4n); // 6 unconsumed left with the expiry
    expect(of('b')).toBe(10n); // overshot by 3: debt until "c" pays it
    expect(of('c')).toBe(3n);
    expect(state.debt).toBe(0n);
    expect(creditLimit(state, now)).toBe(4n + 10n + 20n);
    expect(creditLimit(state, now) - 17n).toBe(17n); // c's 20 less the 3 it paid
  });

  it('counts charges with no grant as debt', () => {
    const state = allocateCredits([], [], new Map([[0, 5n]]), T0, 'c');
    expect(state.debt).toBe(5n);
    expect(creditLimit(state, T0)).toBe(0n);
  });
});
