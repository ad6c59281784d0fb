import { describe, expect, it } from 'vitest';
import { stripeIdentifier } from './payloads';

describe('Stripe meter event identifier', () => {
  it('is the request id, with the meter suffix when several meters are fed', () => {
    expect(stripeIdentifier('req-1', null)).toBe('req-1');
    expect(stripeIdentifier('req-1', 'llm_tokens')).toBe('req-1:llm_tokens');
  });

  it('stays within Stripe\'s 100 characters, stable and distinct per meter', () => {
    const long = 'r'.repeat(64);
    const a = stripeIdentifier(long, 'm'.repeat(60));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(stripeIdentifier(long, 'm'.repeat(60))).toBe(a);
    expect(stripeIdentifier(long, 'n'.repeat(60))).not.toBe(a);
  });
});
