import { describe, expect, it } from 'vitest';
import { countTextTokens } from '../pricing/tokens';
import { DeliveredTokenCounter } from './in-flight';

describe('DeliveredTokenCounter', () => {
  it('counts a growing text like the whole text, however it was cut', () => {
    const text = 'Once upon a time, in a gateway far away, a stream was cut short.\nIt still had to be billed: every token.';
    for (const step of [1, 3, 7, 19]) {
      const counter = new DeliveredTokenCounter();
      let last = 0;
      for (let end = step; end < text.length + step; end += step) last = counter.count(text.slice(0, Math.min(end, text.length)));
      expect(last).toBe(countTextTokens(text));
    }
  });

  it('counts a long text without whitespace in bounded pieces', () => {
    const counter = new DeliveredTokenCounter();
    const text = 'x'.repeat(10_000);
    for (let end = 1000; end <= text.length; end += 1000) counter.count(text.slice(0, end));
    expect(counter.count(text)).toBeGreaterThan(0);
  });
});
