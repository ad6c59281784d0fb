/**
 * @module Webhook settings: `general_settings.alerting: ["webhook"]` plus `WEBHOOK_URL`
 * (comma-separated) and `WEBHOOK_SECRET` from the environment, and our knobs from LiteLLM's
 * `general_settings.alerting_args`. Checked once at start-up; errors name the key.
 */
import { z } from 'zod';
import { ConfigError, type GatewayConfig } from '../config/load';

export interface WebhookSettings {
  /** alerting includes "webhook" (and at least one URL is set). */
  enabled: boolean;
  urls: string[];
  secret: string | null;
  /** Send `spend_tracked` after every metered request (budget alerts are sent regardless). */
  sendSpendTracked: boolean;
  /** How long a delivery is retried after its event was created before it is marked failed. */
  retryMaxAgeMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Per attempt: connect, response headers and body each, and the whole attempt. */
  timeoutMs: number;
  /** Attempts in flight per URL per process, so a stalled receiver cannot starve another. */
  maxConcurrencyPerUrl: number;
  /** How often each process looks for due retries (new events wake it at once). */
  pollIntervalMs: number;
  /** Delivered events older than this are deleted from the outbox. */
  retentionMs: number;
}

/** The width of webhook_deliveries.url; a longer URL would make every ledger batch fail. */
const MAX_URL_LENGTH = 2048;

const positiveInteger = z.coerce.number().int().positive();
const argsSchema = z.object({
  send_spend_tracked: z.boolean().default(true),
  webhook_retry_max_age_seconds: positiveInteger.default(24 * 60 * 60),
  webhook_initial_backoff_ms: positiveInteger.default(1_000),
  webhook_max_backoff_ms: positiveInteger.default(5 * 60 * 1_000),
  webhook_timeout_ms: positiveInteger.default(10_000),
  webhook_max_concurrency: positiveInteger.max(256).default(4),
  webhook_poll_interval_ms: positiveInteger.default(1_000),
  webhook_retention_days: positiveInteger.default(7),
});

export function parseWebhookSettings(config: Pick<GatewayConfig, 'alerting' | 'alertingArgs' | 'webhookUrls' | 'webhookSecret'>): WebhookSettings {
  const parsed = argsSchema.safeParse(config.alertingArgs);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`general_settings.alerting_args.${issue.path.join('.')}: ${issue.message}`);
  }
  const args = parsed.data;
  const enabled = config.alerting.includes('webhook');
  if (enabled && !config.webhookUrls.length) {
    throw new ConfigError('general_settings.alerting: includes "webhook", but WEBHOOK_URL is not set (one URL, or several separated by commas)');
  }
  for (const url of config.webhookUrls) {
    let parsedUrl: URL | null = null;
    try {
      parsedUrl = new URL(url);
    } catch {
      /* reported below */
    }
    if (!parsedUrl || (parsedUrl.protocol !== 'http:' && parsedUrl.protocol !== 'https:')) {
      throw new ConfigError(`WEBHOOK_URL: "${url}" is not an http(s) URL`);
    }
    if (url.length > MAX_URL_LENGTH) throw new ConfigError(`WEBHOOK_URL: a URL is ${url.length} characters long; at most ${MAX_URL_LENGTH} are supported`);
  }
  if (args.webhook_max_backoff_ms < args.webhook_initial_backoff_ms) {
    throw new ConfigError('general_settings.alerting_args.webhook_max_backoff_ms: must be >= webhook_initial_backoff_ms');
  }
  return {
    enabled,
    urls: enabled ? [...new Set(config.webhookUrls)] : [],
    secret: config.webhookSecret ?? null,
    sendSpendTracked: args.send_spend_tracked,
    retryMaxAgeMs: args.webhook_retry_max_age_seconds * 1000,
    initialBackoffMs: args.webhook_initial_backoff_ms,
    maxBackoffMs: args.webhook_max_backoff_ms,
    timeoutMs: args.webhook_timeout_ms,
    maxConcurrencyPerUrl: args.webhook_max_concurrency,
    pollIntervalMs: args.webhook_poll_interval_ms,
    retentionMs: args.webhook_retention_days * 24 * 60 * 60 * 1000,
  };
}
