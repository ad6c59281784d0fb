/**
 * @module Waiting in tests for something another process or thread does: a probe polled until it
 * answers, with a deadline that names what was awaited, so a timeout says what never happened.
 */

export interface PollOptions {
  /** Give up after this long (default 20 s). */
  timeoutMs?: number;
  /** Pause between probes (default 50 ms). */
  intervalMs?: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a probe answers while the awaited thing has not happened: a falsy value. */
type Answer<T> = T | null | undefined | false;

/**
 * Polls `probe` until it returns a truthy value and returns that value; throws
 * `timed out after … waiting for <what>` at the deadline. The probe may be synchronous.
 */
export async function until<T>(what: string, probe: () => Answer<T> | Promise<Answer<T>>, options: PollOptions = {}): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(intervalMs);
  }
}
