import { describe, expect, it } from 'vitest';
import { headOf } from './worker';

describe('the head of a big body', () => {
  it('keeps small values as sent and stands in for big ones', () => {
    const messages = Array.from({ length: 40_000 }, (_, i) => ({ role: 'user', content: `m${i}` }));
    const head = headOf({ model: 'm', user: 'u', stream: true, max_tokens: 5, metadata: { user_id: 'c' }, n: null, messages, tools: [{ type: 'function', function: { name: 'x'.repeat(70_000) } }], note: 'y'.repeat(100_000) });
    expect(head).toMatchObject({ model: 'm', user: 'u', stream: true, max_tokens: 5, metadata: { user_id: 'c' }, n: null, messages: [], tools: [] });
    // A string too long keeps its start, one past the limit: a customer ID that long is still refused.
    expect(head.note).toBe('y'.repeat(64 * 1024 + 1));
  });

  it('keeps at most 512 KB in all; numbers and flags always', () => {
    const body: Record<string, unknown> = {};
    for (let i = 0; i < 20; i++) body[`f${i}`] = 'z'.repeat(60_000);
    body.max_tokens = 7;
    const head = headOf(body);
    const kept = Object.values(head).filter((value) => value === 'z'.repeat(60_000)).length;
    expect(kept).toBe(8);
    expect(JSON.stringify(head).length).toBeLessThan(700 * 1024);
    expect(head.max_tokens).toBe(7);
  });

  it('stands in for a value nested too deep to serialise', () => {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(headOf({ model: 'm', deep }).deep).toEqual([]);
  });
});
