/**
 * @module Upstream failures → the OpenAI-shaped errors clients see. The provider's status is
 * kept where it means something to the caller (bad parameters, unknown model, its rate limit,
 * overload, timeout); our own credentials failing upstream and upstream crashes become 502.
 */
import type { Deployment } from '../config/load';
import { GatewayError } from '../shared/errors';

const CONNECTION_REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } } | null;
  return e?.code ?? e?.cause?.code;
}

/** The upstream never got the request: safe to try another deployment. */
export function isConnectionRefused(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && CONNECTION_REFUSED.has(code);
}

/** A transport failure (refused, reset, timed out) before or during the response. */
export function upstreamFailure(error: unknown, deployment: Deployment): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = errorCode(error);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('upstream_timeout', `Upstream ${deployment.id} did not answer within ${deployment.timeoutMs} ms.`);
  }
  const reason = (error as Error)?.message ?? 'unknown error';
  return new GatewayError('upstream_unreachable', `Upstream ${deployment.id} failed: ${code ? `${code} ` : ''}${reason}`);
}

/** Statuses passed to the client as the provider sent them. */
const PASS_THROUGH = new Set([400, 404, 408, 409, 413, 415, 422, 429, 503, 504]);
/** Anthropic's "overloaded" is 529, which SDKs do not know: the standard equivalent is 503. */
const RENAMED: Record<number, number> = { 529: 503 };

export function upstreamHttpError(status: number, message: string, deployment: Deployment, headers: Record<string, string | string[] | undefined>): GatewayError {
  const clientStatus = RENAMED[status] ?? (PASS_THROUGH.has(status) ? status : 502);
  const extra: Record<string, string> = {};
  const retryAfter = headers['retry-after'];
  if (typeof retryAfter === 'string' && (clientStatus === 429 || clientStatus === 503)) extra['retry-after'] = retryAfter;
  return new GatewayError('upstream_error', `Upstream ${deployment.id} answered ${status}: ${message}`, null, extra, clientStatus);
}
