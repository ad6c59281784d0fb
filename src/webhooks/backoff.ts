/**
 * @module Retry delays: exponential from the initial delay, capped, with "equal jitter"
 * (a random point in the upper half), so many deliveries failing together do not retry in
 * lockstep, yet no retry comes sooner than half the nominal delay.
 */
export function retryDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  // attempt is 1-based: the delay after the first failed attempt is about initialMs.
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const nominal = Math.min(maxMs, initialMs * 2 ** exponent);
  return Math.round(nominal / 2 + random() * (nominal / 2));
}
