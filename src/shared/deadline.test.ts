import { describe, expect, it } from 'vitest';
import { describeAttemptError, withDeadline } from './deadline';

describe('withDeadline', () => {
  it('aborts an attempt that runs past its deadline, naming the timeout', async () => {
    const outcome = withDeadline(20, (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))));
    await expect(outcome).rejects.toMatchObject({ name: 'TimeoutError', message: 'no answer within 20 ms' });
  });

  it('drops the timer once the attempt ends: the signal is never aborted afterwards', async () => {
    let seen: AbortSignal | null = null;
    expect(await withDeadline(20, async (signal) => ((seen = signal), 'done'))).toBe('done');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(seen!.aborted).toBe(false);
  });

  it('describes a failed attempt by its deadline when that ended it, else by the error and its code', async () => {
    let signal: AbortSignal | null = null;
    await withDeadline(10, (given) => ((signal = given), new Promise((resolve) => setTimeout(resolve, 40))));
    // The attempt outlived the deadline: whatever error it threw, the deadline is why.
    expect(describeAttemptError(new Error('aborted'), signal!)).toBe('no answer within 10 ms');
    const refused = Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    expect(describeAttemptError(refused, new AbortController().signal)).toBe('ECONNREFUSED: fetch failed');
  });
});
