import { describe, expect, it } from 'vitest';
import { withDeadline } from './deadline';

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
});
