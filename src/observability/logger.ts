/**
 * @module Structured logs (pino). One line per request at most, never per chunk; keys and
 * authorization headers are redacted.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(name = 'tollgate'): Logger {
  return pino({
    name,
    level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'warn' : 'info'),
    redact: ['req.headers.authorization', 'apiKey', 'api_key', 'masterKey'],
  });
}
