import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './backoff';

describe('retryDelayMs', () => {
  it('doubles per attempt up to the cap, jittered within the upper half', () => {
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(attempt, 1000, 5000, () => 1))).toEqual([1000, 2000, 4000, 5000]);
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(attempt, 1000, 5000, () => 0))).toEqual([500, 1000, 2000, 2500]);
    expect(retryDelayMs(1000, 1000, 300_000, () => 1)).toBe(300_000);
  });
});
