/**
 * @module Upstream failures → the OpenAI-shaped errors clients see. The provider's status is
 * kept where it means something to the caller (bad parameters, unknown model, its rate limit,
 * overload, timeout); our own credentials failing upstream and upstream crashes become 502.
 * The provider's message is never passed on as it came: an upstream (or a proxy in front of
 * it) that echoes the request would hand the client our provider key, so every header value
 * we sent and every configured secret is cut out of it first.
 */
import type { Deployment, GatewayConfig } from '../config/load';
import { GatewayError } from '../shared/errors';
import type { SseOut } from '../providers/types';

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

/** What an upstream's error message may not carry to the client. */
export interface UpstreamErrorContext {
  /** The headers of the request we sent upstream (its credentials among them). */
  sentHeaders: Record<string, string>;
  /** Every secret in the configuration (see configuredSecrets). */
  secrets: readonly string[];
}

export function upstreamHttpError(status: number, message: string, deployment: Deployment, headers: Record<string, string | string[] | undefined>, context: UpstreamErrorContext): GatewayError {
  const clientStatus = RENAMED[status] ?? (PASS_THROUGH.has(status) ? status : 502);
  const extra: Record<string, string> = {};
  const retryAfter = headers['retry-after'];
  if (typeof retryAfter === 'string' && /^[\w ,:+-]{1,64}$/.test(retryAfter) && (clientStatus === 429 || clientStatus === 503)) extra['retry-after'] = retryAfter;
  return new GatewayError('upstream_error', `Upstream ${deployment.id} answered ${status}: ${sanitiseUpstreamMessage(message, context)}`, null, extra, clientStatus);
}

const REDACTED = '[redacted]';
const MAX_MESSAGE_CHARS = 500;
/** Values too short to be a secret ("1", "POST"): cutting them would garble the message. */
const MIN_SECRET_CHARS = 4;
/** Credential shapes redacted even when we do not know the value: bearer tokens, sk-… keys. */
const CREDENTIAL_PATTERNS = [/\b(Bearer|Basic)\s+[^\s"',;]+/gi, /\bsk-[\w-]{4,}/g];

/**
 * The provider's message with every header value we sent (and the token inside a
 * "Bearer …"), every configured secret and anything shaped like a credential replaced by
 * "[redacted]"; control characters flattened and the length capped.
 */
export function sanitiseUpstreamMessage(message: string, context: UpstreamErrorContext): string {
  const secrets = new Set<string>(context.secrets);
  for (const value of Object.values(context.sentHeaders)) {
    secrets.add(value);
    const scheme = /^\s*\w+\s+(\S+)\s*$/.exec(value);
    if (scheme) secrets.add(scheme[1]!);
  }
  // Longest first, so a secret that contains another is cut whole.
  let text = message;
  for (const secret of [...secrets].filter((s) => s.length >= MIN_SECRET_CHARS).sort((a, b) => b.length - a.length)) {
    text = text.split(secret).join(REDACTED);
  }
  for (const pattern of CREDENTIAL_PATTERNS) text = text.replace(pattern, (match, scheme?: string) => (typeof scheme === 'string' && scheme ? `${scheme} ${REDACTED}` : REDACTED));
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}

/** The secrets a configuration holds: keys, passwords in URLs, signing secrets. */
export function configuredSecrets(config: GatewayConfig): string[] {
  const secrets = [config.masterKey, config.webhookSecret, config.keySecret, ...config.deployments.map((deployment) => deployment.apiKey)];
  for (const url of [config.databaseUrl, config.redisUrl, ...config.webhookUrls]) {
    if (!url) continue;
    try {
      const parsed = new URL(url);
      secrets.push(decodeURIComponent(parsed.password), parsed.password);
      if (parsed.search) for (const value of parsed.searchParams.values()) secrets.push(value);
    } catch {
      /* not a URL: nothing to take from it */
    }
  }
  return [...new Set(secrets.filter((secret): secret is string => typeof secret === 'string' && secret.length >= MIN_SECRET_CHARS))];
}

/**
 * An event a provider sends mid-stream may be an error that echoes the request (it arrives
 * after the 200, so upstreamHttpError never sees it): OpenAI's `data: {"error": …}`,
 * Anthropic's and the Responses API's `event: error` / `"type": "error"`. Such an event gets
 * every string in it sanitised like an error body. Other events pass untouched, model output
 * included: they cost one substring test.
 */
export function sanitiseStreamEvent(payload: SseOut, context: UpstreamErrorContext): SseOut {
  const named = typeof payload !== 'string' && payload.event === 'error';
  const data = typeof payload === 'string' ? payload : payload.data;
  if (!named && !data.includes('"error"')) return payload;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return named ? { event: 'error', data: sanitiseUpstreamMessage(data, context) } : payload;
  }
  const object = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : null;
  if (!named && (object === null || (object.error === undefined && object.type !== 'error'))) return payload;
  const clean = JSON.stringify(parsed, (_key, value: unknown) => (typeof value === 'string' ? sanitiseUpstreamMessage(value, context) : value));
  return typeof payload === 'string' ? clean : { event: payload.event, data: clean };
}
