/**
 * @module The ledger page cursor (`after` of /spend/logs and spendLogs): the `createdAt` and
 * `requestId` of the last row of a page, base64url. Decoding is strict, so a crafted cursor
 * is a 400 naming the parameter and never reaches the database.
 */
import { GatewayError } from '../shared/errors';

export interface LedgerCursor {
  /** ISO 8601, exactly as `Date.toISOString` writes it. */
  createdAt: string;
  requestId: string;
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MAX_CURSOR_LENGTH = 1024;

export function encodeLedgerCursor(createdAt: Date, requestId: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${requestId}`).toString('base64url');
}

/** The position a cursor names, or a 400 naming `field` when it is not one this server wrote. */
export function decodeLedgerCursor(cursor: unknown, field = 'after'): LedgerCursor {
  const refuse = () => new GatewayError('bad_request', `Invalid value for ${field}: not a cursor returned by this API (pass the last page's cursor unchanged).`, field);
  if (typeof cursor !== 'string' || !cursor || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+={0,2}$/.test(cursor)) throw refuse();
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const bar = text.indexOf('|');
  if (bar < 0) throw refuse();
  const createdAt = text.slice(0, bar);
  const requestId = text.slice(bar + 1);
  const date = new Date(createdAt);
  if (!ISO_TIMESTAMP.test(createdAt) || Number.isNaN(date.getTime()) || date.toISOString() !== createdAt) throw refuse();
  if (!requestId || requestId.includes('\u0000') || requestId.includes('\uFFFD')) throw refuse();
  return { createdAt, requestId };
}
