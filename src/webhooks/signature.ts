/**
 * @module Standard Webhooks signatures (https://www.standardwebhooks.com): headers
 * `webhook-id`, `webhook-timestamp` (unix seconds) and, when WEBHOOK_SECRET is set,
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. A secret of the
 * form `whsec_<base64>` is used as the decoded bytes (the spec's format, so the official
 * verifier libraries work); any other secret is used as its UTF-8 bytes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const STANDARD_PREFIX = 'whsec_';

export function secretKey(secret: string): Buffer {
  return secret.startsWith(STANDARD_PREFIX) ? Buffer.from(secret.slice(STANDARD_PREFIX.length), 'base64') : Buffer.from(secret, 'utf8');
}

export function sign(secret: string, eventId: string, timestampSeconds: number, body: string): string {
  const digest = createHmac('sha256', secretKey(secret)).update(`${eventId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${digest}`;
}

/** The headers of one delivery attempt (the timestamp is the attempt's, as the spec asks). */
export function webhookHeaders(eventId: string, body: string, secret: string | null, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'Tollgate-Webhooks/1',
    'webhook-id': eventId,
    'webhook-timestamp': String(timestamp),
  };
  if (secret) headers['webhook-signature'] = sign(secret, eventId, timestamp, body);
  return headers;
}

/** Receiver side, for tests and users: true when one of the space-separated v1 signatures matches. */
export function verify(secret: string, eventId: string, timestamp: string, body: string, signatureHeader: string): boolean {
  const expected = Buffer.from(sign(secret, eventId, Number(timestamp), body));
  return signatureHeader.split(' ').some((candidate) => {
    const actual = Buffer.from(candidate);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  });
}
