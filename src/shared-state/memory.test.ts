import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter, MemorySpendBook } from './memory';

describe('MemorySpendBook', () => {
  const key = { customerId: 'c', scope: '', periodStartMs: 1000 };
  it('admits while spend + reservations < limit and trues up at commit', () => {
    const book = new MemorySpendBook();
    expect(book.reserve(key, 60n, 100n).admitted).toBe(true);
    expect(book.reserve(key, 60n, 100n).admitted).toBe(true); // 60 < 100: admitted
    expect(book.reserve(key, 1n, 100n).admitted).toBe(false); // 120 >= 100
    expect(book.commit(key, 60n, 10n)).toBe(10n);
    book.release(key, 60n);
    expect(book.reserve(key, 1n, 100n)).toMatchObject({ admitted: true, spend: 10n, reserved: 1n });
  });
  it('starts a new period from zero and keeps late settlements in the old one', () => {
    const book = new MemorySpendBook();
    book.reserve(key, 5n, null);
    const next = { ...key, periodStartMs: 2000 };
    expect(book.reserve(next, 1n, 10n)).toMatchObject({ admitted: true, spend: 0n });
    book.commit(key, 5n, 5n); // admitted in the old period
    expect(book.spendOf(next)).toBe(0n);
  });
  it('refuses at once with a zero limit', () => {
    expect(new MemorySpendBook().reserve(key, 0n, 0n).admitted).toBe(false);
  });
});

describe('MemoryRateLimiter', () => {
  it('allows rpm requests in any 60 s window (sliding, not fixed)', () => {
    const limiter = new MemoryRateLimiter();
    const limits = { rpm: 2, tpm: null, parallel: null };
    const a = limiter.acquire('k', limits, 1, 0);
    const b = limiter.acquire('k', limits, 1, 59_000);
    expect(a.ok && b.ok).toBe(true);
    if (a.ok) limiter.settle(a.ticket, 1);
    if (b.ok) limiter.settle(b.ticket, 1);
    // A fixed window would reset at 60 s and admit two more here.
    const c = limiter.acquire('k', limits, 1, 60_500);
    expect(c.ok).toBe(true); // a left the window at 60 s
    const d = limiter.acquire('k', limits, 1, 61_000);
    expect(d).toMatchObject({ ok: false, limitType: 'requests' });
    if (!d.ok) expect(d.retryAfterMs).toBe(59_000 + 60_000 - 61_000);
  });
  it('reserves tokens and trues them up', () => {
    const limiter = new MemoryRateLimiter();
    const limits = { rpm: null, tpm: 100, parallel: null };
    const a = limiter.acquire('k', limits, 90, 0);
    expect(a.ok).toBe(true);
    expect(limiter.acquire('k', limits, 20, 1)).toMatchObject({ ok: true }); // 90 < 100
    expect(limiter.acquire('k', limits, 1, 2)).toMatchObject({ ok: false, limitType: 'tokens' }); // 110 >= 100
    if (a.ok) limiter.settle(a.ticket, 10);
    expect(limiter.acquire('k', limits, 1, 3).ok).toBe(true); // 30 < 100
  });
  it('limits requests in flight', () => {
    const limiter = new MemoryRateLimiter();
    const limits = { rpm: null, tpm: null, parallel: 1 };
    const a = limiter.acquire('k', limits, 0, 0);
    expect(limiter.acquire('k', limits, 0, 1)).toMatchObject({ ok: false, limitType: 'parallel_requests' });
    if (a.ok) limiter.settle(a.ticket, 0);
    expect(limiter.acquire('k', limits, 0, 2).ok).toBe(true);
  });
});
