/**
 * @module The one error catalogue: every refusal Tollgate sends has a stable code here,
 * mapped to an HTTP status and an OpenAI-style `error.type`. Data plane, REST and GraphQL
 * all throw or return `GatewayError`, and each edge renders it in its own envelope.
 */
export const ERROR_CATALOGUE = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  bad_request: { status: 400, type: 'bad_request' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  invalid_customer_id: { status: 400, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  unauthorized: { status: 401, type: 'auth_error' },
  forbidden: { status: 403, type: 'auth_error' },
  customer_blocked: { status: 403, type: 'customer_blocked' },
  customer_not_found: { status: 403, type: 'customer_not_found' },
  not_found: { status: 404, type: 'not_found' },
  conflict: { status: 409, type: 'conflict' },
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  // 402 by default: no tested SDK retries it (tollgate.budget_exceeded_status: 429 for LiteLLM's status).
  budget_exceeded: { status: 402, type: 'budget_exceeded' },
  // A prepaid customer whose credits do not cover the request: the same mechanism (402, never retried).
  credits_exhausted: { status: 402, type: 'credits_exhausted' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_exceeded' },
  upstream_error: { status: 502, type: 'upstream_error' },
  upstream_unreachable: { status: 502, type: 'upstream_error' },
  upstream_timeout: { status: 504, type: 'upstream_timeout' },
  service_unavailable: { status: 503, type: 'service_unavailable' },
  internal_error: { status: 500, type: 'internal_error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class GatewayError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
    statusOverride?: number,
  ) {
    super(message);
    this.name = 'GatewayError';
    this.status = statusOverride ?? ERROR_CATALOGUE[code].status;
    this.type = ERROR_CATALOGUE[code].type;
  }

  /** OpenAI/LiteLLM ProxyException envelope; `code` is the status as a string (LiteLLM wire shape). */
  toEnvelope(): { error: { message: string; type: string; param: string | null; code: string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: String(this.status) } };
  }
}

export function isGatewayError(value: unknown): value is GatewayError {
  return value instanceof GatewayError;
}
