import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, verify, webhookHeaders } from './signature';

describe('Standard Webhooks signature', () => {
  it('matches the specification example', () => {
    // From the Standard Webhooks spec (and the svix libraries' test vectors).
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"test": 2432232314}';
    expect(sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, body)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('signs plain secrets as UTF-8 and sends no signature without a secret', () => {
    const headers = webhookHeaders('evt_1', '{"a":1}', 'my-secret', 1_700_000_000_123);
    expect(headers['webhook-timestamp']).toBe('1700000000');
    const expected = createHmac('sha256', 'my-secret').update('evt_1.1700000000.{"a":1}').digest('base64');
    expect(headers['webhook-signature']).toBe(`v1,${expected}`);
    expect(verify('my-secret', 'evt_1', '1700000000', '{"a":1}', `v1,bogus ${headers['webhook-signature']}`)).toBe(true);
    expect(verify('other', 'evt_1', '1700000000', '{"a":1}', headers['webhook-signature']!)).toBe(false);
    expect(webhookHeaders('evt_1', '{}', null)['webhook-signature']).toBeUndefined();
  });
});
