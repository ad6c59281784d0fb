/**
 * @module Exporter settings: `tollgate.exporters`, a list of Stripe and OpenMeter exporters.
 * Checked once at start-up (before any port opens); errors name the key, e.g.
 * `tollgate.exporters[0].event_name`.
 */
import { z } from 'zod';
import { ConfigError, type GatewayConfig } from '../config/load';

/** What a Stripe meter event's `value` counts. */
export const STRIPE_VALUES = ['charge', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cached_prompt_tokens'] as const;
export type StripeValue = (typeof STRIPE_VALUES)[number];

/** Integer units a charge is sent in, as pico-dollars per unit. */
export const CHARGE_UNITS = { usd_cents: 10_000_000_000n, usd_micros: 1_000_000n, usd_nanos: 1_000n, usd_picos: 1n } as const;
export type ChargeUnit = keyof typeof CHARGE_UNITS;

interface CommonSettings {
  /** Unique; the outbox, the dead-letter list and the lag metric are per name. */
  name: string;
  retryMaxAgeMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
  pollIntervalMs: number;
  /** Events claimed per round (sent concurrently). */
  batchSize: number;
}

export interface StripeExporterSettings extends CommonSettings {
  type: 'stripe';
  apiKey: string;
  eventName: string;
  /**
   * Appended to the request id as `<request id>:<suffix>` in the event `identifier`: the event
   * name when several Stripe exporters are configured (Stripe dedupes identifiers account-wide,
   * so two meters fed by one request need two identifiers); null with a single one.
   */
  identifierSuffix: string | null;
  value: StripeValue;
  unit: ChargeUnit;
  /** The Stripe API's address (a local receiver or stripe-mock in tests); Stripe's own when unset. */
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
}

export interface OpenMeterExporterSettings extends CommonSettings {
  type: 'openmeter';
  /** Base URL; events go to `<url>/api/v1/events`. */
  url: string;
  apiKey: string | null;
  eventType: string;
  source: string;
}

export type ExporterSettings = StripeExporterSettings | OpenMeterExporterSettings;

const positiveInteger = z.coerce.number().int().positive();
const common = {
  name: z.string().regex(/^[a-z0-9_-]{1,64}$/i, 'must be 1 to 64 letters, digits, "_" or "-"').optional(),
  retry_max_age_seconds: positiveInteger.default(3 * 24 * 60 * 60),
  initial_backoff_ms: positiveInteger.default(1_000),
  max_backoff_ms: positiveInteger.default(5 * 60 * 1_000),
  timeout_ms: positiveInteger.default(10_000),
  poll_interval_ms: positiveInteger.default(1_000),
  batch_size: positiveInteger.max(1000).default(50),
};
const stripeSchema = z.strictObject({
  type: z.literal('stripe'),
  ...common,
  api_key: z.string({ error: 'is required (a Stripe secret key, e.g. os.environ/STRIPE_API_KEY)' }).min(1, 'is required'),
  event_name: z.string({ error: 'is required (the event_name of your Stripe meter)' }).min(1, 'is required').max(100),
  value: z.enum(STRIPE_VALUES).default('charge'),
  unit: z.enum(Object.keys(CHARGE_UNITS) as [ChargeUnit, ...ChargeUnit[]]).default('usd_micros'),
  host: z.string().min(1).optional(),
  port: z.coerce.number().int().min(1).max(65535).optional(),
  protocol: z.enum(['http', 'https']).optional(),
});
const openMeterSchema = z.strictObject({
  type: z.literal('openmeter'),
  ...common,
  url: z.string({ error: 'is required (e.g. https://openmeter.cloud)' }).url('must be an http(s) URL'),
  api_key: z.string().min(1).optional(),
  event_type: z.string().min(1).default('tollgate.request'),
  source: z.string().min(1).default('tollgate'),
});
const exporterSchema = z.discriminatedUnion('type', [stripeSchema, openMeterSchema], { error: 'type must be "stripe" or "openmeter"' });

export function parseExporterSettings(config: Pick<GatewayConfig, 'exporters'>): ExporterSettings[] {
  const exporters = parseEach(config.exporters);
  const stripe = exporters.filter((e): e is StripeExporterSettings => e.type === 'stripe');
  if (stripe.length > 1) {
    const seen = new Set<string>();
    for (const settings of stripe) {
      if (seen.has(settings.eventName)) throw new ConfigError(`tollgate.exporters[${exporters.indexOf(settings)}].event_name: "${settings.eventName}" is used by another Stripe exporter; each needs its own meter`);
      seen.add(settings.eventName);
      settings.identifierSuffix = settings.eventName;
    }
  }
  return exporters;
}

function parseEach(list: unknown[]): ExporterSettings[] {
  const names = new Set<string>();
  return list.map((raw, index) => {
    const where = `tollgate.exporters[${index}]`;
    const parsed = exporterSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(`${where}${issue.path.length ? '.' + issue.path.join('.') : ''}: ${issue.message}`);
    }
    const value = parsed.data;
    const name = value.name ?? value.type;
    if (names.has(name)) throw new ConfigError(`${where}.name: "${name}" is used by another exporter; give each a unique name`);
    names.add(name);
    if (value.max_backoff_ms < value.initial_backoff_ms) throw new ConfigError(`${where}.max_backoff_ms: must be >= initial_backoff_ms`);
    const shared: CommonSettings = {
      name,
      retryMaxAgeMs: value.retry_max_age_seconds * 1000,
      initialBackoffMs: value.initial_backoff_ms,
      maxBackoffMs: value.max_backoff_ms,
      timeoutMs: value.timeout_ms,
      pollIntervalMs: value.poll_interval_ms,
      batchSize: value.batch_size,
    };
    if (value.type === 'stripe') {
      if (value.value !== 'charge' && 'unit' in (raw as object)) throw new ConfigError(`${where}.unit: only applies to value: charge (tokens are counted as they are)`);
      return { ...shared, type: 'stripe', apiKey: value.api_key, eventName: value.event_name, identifierSuffix: null, value: value.value, unit: value.unit, host: value.host, port: value.port, protocol: value.protocol };
    }
    return { ...shared, type: 'openmeter', url: value.url.replace(/\/+$/, ''), apiKey: value.api_key ?? null, eventType: value.event_type, source: value.source };
  });
}
