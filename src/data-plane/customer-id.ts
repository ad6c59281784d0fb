/**
 * @module Which customer a request is for. The sources are tried in order, first match wins;
 * by default (SPEC §3): header x-litellm-customer-id, header x-litellm-end-user-id, body
 * `user`, body `safety_identifier` (OpenAI's successor of `user`), body `metadata.user_id`
 * (Anthropic's). `tollgate.customer_id_sources` reorders or drops them. IDs are opaque strings
 * of at most 256 characters without control characters. A key bound to a
 * customer is that customer, whatever the request says; naming another one is refused.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../governance/records';
import { GatewayError } from '../shared/errors';

export const MAX_CUSTOMER_ID_LENGTH = 256;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** A body field, or `header:<name>` for a request header. */
export type CustomerIdSource = 'user' | 'safety_identifier' | 'metadata.user_id' | `header:${string}`;

export const DEFAULT_CUSTOMER_ID_SOURCES: CustomerIdSource[] = ['header:x-litellm-customer-id', 'header:x-litellm-end-user-id', 'user', 'safety_identifier', 'metadata.user_id'];

function headerValue(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text && text.trim() ? text.trim() : null;
}

export function validateCustomerId(id: unknown, source: string): string {
  if (typeof id === 'number' && Number.isFinite(id)) id = String(id);
  if (typeof id !== 'string') throw new GatewayError('invalid_customer_id', `${source} must be a string customer ID.`, source);
  if (id.length === 0 || id.trim().length === 0) throw new GatewayError('invalid_customer_id', `${source} must not be empty.`, source);
  if (id.length > MAX_CUSTOMER_ID_LENGTH) {
    throw new GatewayError('invalid_customer_id', `${source} is ${id.length} characters long; customer IDs are at most ${MAX_CUSTOMER_ID_LENGTH}.`, source);
  }
  if (CONTROL_CHARACTERS.test(id)) throw new GatewayError('invalid_customer_id', `${source} contains control characters.`, source);
  return id;
}

const present = (value: unknown): boolean => value !== undefined && value !== null && value !== '';

/** The customer the request names, and where (for errors), or null. */
function namedCustomer(headers: IncomingHttpHeaders, body: Record<string, unknown>, sources: readonly CustomerIdSource[]): { id: string; source: string } | null {
  for (const source of sources) {
    if (source.startsWith('header:')) {
      const name = source.slice('header:'.length).toLowerCase();
      const value = headerValue(headers, name);
      if (value !== null) return { id: validateCustomerId(value, `header ${name}`), source: `header ${name}` };
    } else if (source === 'metadata.user_id') {
      const metadata = body.metadata;
      if (metadata && typeof metadata === 'object' && !Array.isArray(metadata)) {
        const userId = (metadata as { user_id?: unknown }).user_id;
        if (present(userId)) return { id: validateCustomerId(userId, 'metadata.user_id'), source: 'metadata.user_id' };
      }
    } else if (present(body[source])) return { id: validateCustomerId(body[source], source), source };
  }
  return null;
}

export function extractCustomerId(headers: IncomingHttpHeaders, body: Record<string, unknown>, sources: readonly CustomerIdSource[] = DEFAULT_CUSTOMER_ID_SOURCES): string | null {
  return namedCustomer(headers, body, sources)?.id ?? null;
}

/**
 * The customer a request is charged to. A bound key's own customer, always: an app that ships
 * such a key to a browser or a phone cannot spend another customer's budget with it.
 */
export function customerIdFor(principal: Principal, headers: IncomingHttpHeaders, body: Record<string, unknown>, sources: readonly CustomerIdSource[] = DEFAULT_CUSTOMER_ID_SOURCES): string | null {
  const named = namedCustomer(headers, body, sources);
  if (principal.customerId === null) return named?.id ?? null;
  if (named && named.id !== principal.customerId) {
    throw new GatewayError(
      'forbidden',
      `This key is bound to customer "${principal.customerId}", but the request names customer "${named.id}" (${named.source}). A bound key acts only for its own customer.`,
      named.source,
    );
  }
  return principal.customerId;
}
