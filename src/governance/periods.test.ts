import { describe, expect, it } from 'vitest';
import { currentPeriod, firstResetAfter, parseDuration } from './periods';

const d = (iso: string) => new Date(iso);

describe('parseDuration', () => {
  it('accepts every unit', () => {
    for (const text of ['30s', '15m', '1h', '1d', '7d', '2w', '1mo', '30d']) expect(parseDuration(text)?.text).toBe(text);
  });
  it('treats empty and none as no reset', () => {
    expect(parseDuration('')).toBeNull();
    expect(parseDuration('none')).toBeNull();
    expect(parseDuration(null)).toBeNull();
  });
  it('rejects zero, negative and unknown units', () => {
    for (const text of ['0s', '-5m', '1y', 'abc', '1.5d']) expect(() => parseDuration(text)).toThrow();
  });
  it('rejects periods longer than a hundred years, in any unit', () => {
    for (const text of ['99999999mo', '1201mo', '36700d', '5300w', '900000h', '99999999999s']) expect(() => parseDuration(text)).toThrow(/longer than 100 years/);
    expect(parseDuration('1200mo')).toMatchObject({ count: 1200, unit: 'mo' });
  });
});

describe('firstResetAfter', () => {
  it('aligns days, weeks and months in UTC', () => {
    const now = d('2026-11-26T15:30:00Z'); // a Thursday
    expect(firstResetAfter(parseDuration('1d')!, now, 'UTC').toISOString()).toBe('2026-11-27T00:00:00.000Z');
    expect(firstResetAfter(parseDuration('7d')!, now, 'UTC').toISOString()).toBe('2026-11-30T00:00:00.000Z');
    expect(firstResetAfter(parseDuration('30d')!, now, 'UTC').toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(firstResetAfter(parseDuration('1mo')!, now, 'UTC').toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(firstResetAfter(parseDuration('15m')!, now, 'UTC').toISOString()).toBe('2026-11-26T15:45:00.000Z');
  });
  it('honours the time zone', () => {
    const now = d('2026-11-26T15:30:00Z'); // 23:30 in Shanghai
    expect(firstResetAfter(parseDuration('1d')!, now, 'Asia/Shanghai').toISOString()).toBe('2026-11-26T16:00:00.000Z');
  });
});

describe('currentPeriod', () => {
  it('is the lifetime without a duration', () => {
    expect(currentPeriod(null, null, new Date(), 'UTC')).toEqual({ start: new Date(0), end: null });
  });
  it('rolls a stale reset forward to the period containing now', () => {
    const p = currentPeriod(parseDuration('1d')!, d('2026-11-01T00:00:00Z'), d('2026-11-26T15:30:00Z'), 'UTC');
    expect(p.start.toISOString()).toBe('2026-11-26T00:00:00.000Z');
    expect(p.end!.toISOString()).toBe('2026-11-27T00:00:00.000Z');
  });
  it('changes period exactly at the reset instant', () => {
    const reset = d('2026-11-26T16:00:00Z');
    expect(currentPeriod(parseDuration('1h')!, reset, d('2026-11-26T15:59:59.999Z'), 'UTC').end).toEqual(reset);
    expect(currentPeriod(parseDuration('1h')!, reset, reset, 'UTC').start).toEqual(reset);
  });
  it('answers from its cache exactly what it computes, whatever instant of the period asks, and not outside it', () => {
    const duration = parseDuration('1d')!;
    const reset = d('2026-11-27T00:00:00Z');
    const inside = ['2026-11-26T00:00:00.000Z', '2026-11-26T12:00:00Z', '2026-11-26T23:59:59.999Z'].map((t) => currentPeriod(duration, reset, d(t), 'Europe/Paris'));
    const fresh = currentPeriod(duration, reset, d('2026-11-26T12:00:00Z'), 'America/New_York'); // another zone: its own entry
    for (const period of inside) expect(period).toEqual(inside[0]);
    expect(fresh.end).toEqual(reset);
    // Before the cached period's start (a clock stepped back): computed again, not the cached one.
    const earlier = currentPeriod(duration, reset, d('2026-11-24T10:00:00Z'), 'Europe/Paris');
    expect(earlier.end!.getTime()).toBeLessThan(reset.getTime());
    expect(earlier.start.getTime()).toBeLessThanOrEqual(d('2026-11-24T10:00:00Z').getTime());
    // At and after the reset: the next period.
    expect(currentPeriod(duration, reset, reset, 'Europe/Paris').start.getTime()).toBeGreaterThanOrEqual(reset.getTime() - 3_600_000);
  });
});
