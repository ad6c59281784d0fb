import { describe, expect, it } from 'vitest';
import { dollarsToPico, picoToDecimalString, picoToDollars } from './money';

describe('money', () => {
  it('parses numbers and strings exactly', () => {
    expect(dollarsToPico(0.1)).toBe(100_000_000_000n);
    expect(dollarsToPico('0')).toBe(0n);
    expect(dollarsToPico('4')).toBe(4_000_000_000_000n);
    expect(dollarsToPico(0.0000005)).toBe(500_000n);
    expect(dollarsToPico('1.5e-6')).toBe(1_500_000n);
    expect(dollarsToPico('.25')).toBe(250_000_000_000n);
  });
  it('rounds past twelve digits half up', () => {
    expect(dollarsToPico('0.0000000000015')).toBe(2n);
    expect(dollarsToPico('0.0000000000014')).toBe(1n);
  });
  it('rejects non-decimals', () => {
    expect(() => dollarsToPico('abc')).toThrow();
    expect(() => dollarsToPico(Number.NaN)).toThrow();
    expect(() => dollarsToPico('')).toThrow();
  });
  it('formats back to dollars', () => {
    expect(picoToDecimalString(1_413_000_000n)).toBe('0.001413');
    expect(picoToDollars(1_413_000_000n)).toBe(0.001413);
    expect(picoToDecimalString(4_000_000_000_000n)).toBe('4');
    expect(picoToDecimalString(-5n)).toBe('-0.000000000005');
  });
});
