/**
 * @module Loads config.yaml: parse, resolve `os.environ/NAME`, validate with zod, price every
 * deployment, and return one typed `GatewayConfig`. Every failure is a `ConfigError` that
 * names the YAML path, raised before any port opens.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, KNOWN_KEYS, type RawConfig } from './schema';
import { resolvePrice, type ModelPrice } from '../pricing/prices';
import { DEFAULT_COMMAND_TIMEOUT_MS } from '../shared-state/types';
import type { GraphQLLimits } from '../control-plane/graphql/limits';
import type { CustomerIdSource } from '../data-plane/customer-id';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Deployment {
  /** Stable id: `<model_name>#<index in model_list>`. */
  id: string;
  modelName: string;
  provider: string;
  upstreamModel: string;
  apiBase?: string;
  apiKey?: string;
  apiVersion?: string;
  price: ModelPrice;
  maxOutputTokens: number;
  timeoutMs: number;
  mock?: { latencyMs: number; response?: string };
  /** How /v1/responses reaches it: the upstream's own Responses endpoint, or through chat. */
  responsesApi: 'native' | 'translate';
  /** How /v1/messages reaches it: the upstream's own Messages endpoint, or through chat. */
  messagesApi: 'native' | 'translate';
}

/** Default `tollgate.credits_low_threshold`: credits_low when at most 20% of what was granted is left. */
export const DEFAULT_CREDITS_LOW_THRESHOLD = 0.2;

/** Default `tollgate.heap_growing_percent` (see server/heap-growth.ts). */
export const DEFAULT_HEAP_GROWING_PERCENT = 50;

/** Default `tollgate.malloc_mmap_threshold_kb` (see server/malloc-tuning.ts): glibc's initial value, held. */
export const DEFAULT_MALLOC_MMAP_THRESHOLD_KB = 128;

/** Default `tollgate.idle_collection_seconds` (see server/idle-collection.ts). */
export const DEFAULT_IDLE_COLLECTION_SECONDS = 10;

export interface GatewayConfig {
  masterKey: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** Prefix of every Redis key and channel (TOLLGATE_REDIS_PREFIX): lets deployments share a Redis. */
  redisKeyPrefix: string;
  dataDir: string;
  deployments: Deployment[];
  defaultBudgetId?: string;
  timezone: string;
  alerting: string[];
  alertingArgs: Record<string, unknown>;
  webhookUrls: string[];
  webhookSecret?: string;
  ledgerFlushIntervalMs: number;
  /** How often the requests in flight (and what streams delivered) are journaled for a restart after kill -9. */
  inFlightJournalIntervalMs: number;
  /** Ledger rows older than this many days are dropped (whole daily partitions); null keeps them all. */
  ledgerRetentionDays: number | null;
  maxBodyBytes: number;
  /**
   * What a proxy does with customers' requests while the shared counters (Redis) cannot be
   * reached: `closed` refuses them with a 503 (no spend goes uncounted), `open` serves them
   * without checking budgets and rate limits, and still meters them (the counters catch up).
   */
  failMode: FailMode;
  /** With Redis: how long a reservation of a proxy that died mid-request holds budget. */
  reservationLeaseMs: number;
  /** With Redis: how long any command may wait for its reply before the fail mode applies. */
  redisCommandTimeoutMs: number;
  /** Customers one process keeps in memory (least recently used beyond that are dropped). */
  customerCacheSize: number;
  /** How far V8's old generation may grow past what survived a full collection, in % (0: V8 decides). */
  heapGrowingPercent: number;
  mallocMmapThresholdKb: number;
  /** A full garbage collection once no request has arrived for this long (0: never). */
  idleCollectionMs: number;
  /** `tollgate.graphql_limits`: what one GraphQL operation may ask; unset keys keep the defaults. */
  graphqlLimits: Partial<GraphQLLimits>;
  /** Slow-client timeouts and connection caps of the HTTP server. */
  connectionLimits: ConnectionLimits;
  /** How long a graceful stop waits for requests in flight before cutting them. */
  drainTimeoutMs: number;
  /** Where a customer ID is read from, in order (`tollgate.customer_id_sources`). */
  customerIdSources?: CustomerIdSource[];
  /** A customer ID never seen before: create the customer, or refuse with a 403. */
  unknownCustomers: 'create' | 'refuse';
  /** 402 (no SDK retries it) or LiteLLM's 429. */
  budgetExceededStatus: 402 | 429;
  /** credits_low fires when a prepaid customer has at most this fraction of what its grants make usable left. */
  creditsLowThreshold: number;
  /** How long responses produced on translated deployments are kept for previous_response_id. */
  responseRetentionMs: number;
  /** Secret that keys the stored key hashes (TOLLGATE_KEY_SECRET); derived from the master key when unset. */
  keySecret?: string;
  /** `tollgate.exporters` as written (env references resolved); see src/exporters/settings.ts. */
  exporters: unknown[];
  warnings: string[];
}

export interface ConnectionLimits {
  /** Time allowed to send the request line and headers (slowloris). */
  headersTimeoutMs: number;
  /** Time allowed to send a whole request, body included. */
  requestTimeoutMs: number;
  /** How long an idle kept-alive connection stays open. */
  keepAliveTimeoutMs: number;
  /** Open connections in all (0: no cap). */
  maxConnections: number;
  /** Open connections from one client address (0: no cap). Behind a load balancer every client has the balancer's address: raise it, or 0. */
  maxConnectionsPerIp: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  // Above the 60 s idle timeout of common load balancers, so they never reuse a socket we just closed.
  keepAliveTimeoutMs: 65_000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
};

const ENV_PREFIX = 'os.environ/';

/** Replaces every `os.environ/NAME` string with the variable's value (undefined when unset). */
function resolveEnvironment(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string' && value.startsWith(ENV_PREFIX)) return env[value.slice(ENV_PREFIX.length)];
  if (Array.isArray(value)) return value.map((item) => resolveEnvironment(item, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveEnvironment(v, env)]));
  }
  return value;
}

function unknownKeyWarnings(raw: Record<string, unknown>): string[] {
  const ignored: string[] = [];
  for (const [section, value] of Object.entries(raw)) {
    if (!(section in KNOWN_KEYS)) {
      ignored.push(section);
      continue;
    }
    const known = KNOWN_KEYS[section];
    if (known && value && typeof value === 'object' && !Array.isArray(value)) {
      for (const key of Object.keys(value)) if (!known.includes(key)) ignored.push(`${section}.${key}`);
    }
  }
  return ignored.length ? [`config keys ignored (not used by Tollgate): ${ignored.join(', ')}`] : [];
}

function formatZodPath(path: PropertyKey[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i ? '.' : ''}${String(part)}`)).join('');
}

export function parseConfig(text: string, env: NodeJS.ProcessEnv = process.env, origin = 'config'): GatewayConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${origin}: not valid YAML: ${(error as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${origin}: expected a YAML mapping at the top level`);
  const resolved = resolveEnvironment(raw, env) as Record<string, unknown>;
  const parsed = configSchema.safeParse(resolved);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = formatZodPath(issue.path) || '(top level)';
    throw new ConfigError(`${origin}: ${where}: ${issue.message}`);
  }
  return toGatewayConfig(parsed.data, env, unknownKeyWarnings(raw as Record<string, unknown>));
}

function toGatewayConfig(config: RawConfig, env: NodeJS.ProcessEnv, warnings: string[]): GatewayConfig {
  const tollgate = config.tollgate ?? {};
  const defaultMaxOutput = tollgate.default_max_output_tokens ?? 4096;
  const deployments = config.model_list.map((entry, index): Deployment => {
    const params = entry.litellm_params;
    const slash = params.model.indexOf('/');
    const provider = params.model.slice(0, slash).toLowerCase();
    const upstreamModel = params.model.slice(slash + 1);
    const info = entry.model_info ?? {};
    // An Azure deployment name says nothing about its model: `model_info.base_model` does.
    const priced = info.base_model ? splitModel(info.base_model, provider) : { provider, model: upstreamModel };
    const price = resolvePrice(priced.provider, priced.model, {
      input_cost_per_token: params.input_cost_per_token ?? info.input_cost_per_token,
      output_cost_per_token: params.output_cost_per_token ?? info.output_cost_per_token,
      cache_read_input_token_cost: params.cache_read_input_token_cost ?? info.cache_read_input_token_cost,
      cache_creation_input_token_cost: params.cache_creation_input_token_cost ?? info.cache_creation_input_token_cost,
      cache_creation_input_token_cost_above_1hr: params.cache_creation_input_token_cost_above_1hr ?? info.cache_creation_input_token_cost_above_1hr,
    });
    if (!price) {
      throw new ConfigError(
        `model_list[${index}] (${entry.model_name}): no price is known for "${params.model}"; ` +
          'set litellm_params.input_cost_per_token and output_cost_per_token (0 for a free model)',
      );
    }
    if (provider !== 'mock' && !params.api_base && !['openai', 'anthropic'].includes(provider)) {
      throw new ConfigError(`model_list[${index}].litellm_params.api_base: is required for provider "${provider}"`);
    }
    return {
      id: `${entry.model_name}#${index}`,
      modelName: entry.model_name,
      provider,
      upstreamModel,
      apiBase: params.api_base,
      apiKey: params.api_key,
      apiVersion: params.api_version,
      price,
      maxOutputTokens: info.max_output_tokens ?? info.max_tokens ?? params.max_tokens ?? defaultMaxOutput,
      timeoutMs: (params.timeout ? params.timeout * 1000 : undefined) ?? tollgate.upstream_timeout_ms ?? 600_000,
      mock: provider === 'mock' ? { latencyMs: params.mock_latency_ms ?? 0, response: params.mock_response } : undefined,
      responsesApi: info.responses_api ?? (provider === 'openai' || provider === 'azure' ? 'native' : 'translate'),
      messagesApi: info.messages_api ?? (provider === 'anthropic' ? 'native' : 'translate'),
    };
  });

  const webhookUrls = (env.WEBHOOK_URL ?? '')
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  return {
    masterKey: config.general_settings.master_key,
    databaseUrl: env.DATABASE_URL || config.general_settings.database_url || undefined,
    redisUrl: env.REDIS_URL || config.router_settings?.redis_url || undefined,
    redisKeyPrefix: env.TOLLGATE_REDIS_PREFIX || 'tollgate:',
    dataDir: resolve(env.TOLLGATE_DATA_DIR || tollgate.data_dir || './.tollgate'),
    deployments,
    defaultBudgetId: config.litellm_settings?.max_end_user_budget_id,
    timezone: validateTimezone(config.litellm_settings?.timezone ?? 'UTC'),
    alerting: config.general_settings.alerting ?? [],
    alertingArgs: config.general_settings.alerting_args ?? {},
    webhookUrls,
    webhookSecret: env.WEBHOOK_SECRET || undefined,
    ledgerFlushIntervalMs: tollgate.ledger_flush_interval_ms ?? 200,
    inFlightJournalIntervalMs: tollgate.in_flight_journal_interval_ms ?? 500,
    ledgerRetentionDays: tollgate.ledger_retention_days ?? null,
    maxBodyBytes: tollgate.max_body_bytes ?? 10 * 1024 * 1024,
    failMode: failModeOf(env.TOLLGATE_FAIL_MODE, tollgate.fail_mode),
    reservationLeaseMs: (tollgate.reservation_lease_seconds ?? 900) * 1000,
    redisCommandTimeoutMs: tollgate.redis_command_timeout_ms ?? DEFAULT_COMMAND_TIMEOUT_MS,
    customerCacheSize: tollgate.customer_cache_size ?? 100_000,
    heapGrowingPercent: tollgate.heap_growing_percent ?? DEFAULT_HEAP_GROWING_PERCENT,
    mallocMmapThresholdKb: tollgate.malloc_mmap_threshold_kb ?? DEFAULT_MALLOC_MMAP_THRESHOLD_KB,
    idleCollectionMs: (tollgate.idle_collection_seconds ?? DEFAULT_IDLE_COLLECTION_SECONDS) * 1000,
    graphqlLimits: graphqlLimitsOf(tollgate.graphql_limits ?? {}),
    connectionLimits: connectionLimitsOf(tollgate),
    drainTimeoutMs: tollgate.drain_timeout_ms ?? 30_000,
    customerIdSources: tollgate.customer_id_sources as CustomerIdSource[] | undefined,
    unknownCustomers: tollgate.unknown_customers ?? 'create',
    budgetExceededStatus: (tollgate.budget_exceeded_status ?? 402) as 402 | 429,
    creditsLowThreshold: tollgate.credits_low_threshold ?? DEFAULT_CREDITS_LOW_THRESHOLD,
    responseRetentionMs: (tollgate.response_retention_days ?? 30) * 86_400_000,
    keySecret: keySecretOf(env.TOLLGATE_KEY_SECRET, tollgate.key_secret),
    exporters: tollgate.exporters ?? [],
    warnings,
  };
}

export type FailMode = 'closed' | 'open';

function graphqlLimitsOf(raw: NonNullable<NonNullable<RawConfig['tollgate']>['graphql_limits']>): Partial<GraphQLLimits> {
  const limits: Partial<GraphQLLimits> = {
    maxDepth: raw.max_depth,
    maxCost: raw.max_cost,
    maxAliases: raw.max_aliases,
    maxDirectives: raw.max_directives,
    maxTokens: raw.max_tokens,
    timeBudgetMs: raw.time_budget_ms,
  };
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
}

function keySecretOf(fromEnv: string | undefined, fromFile: string | undefined): string | undefined {
  if (fromEnv !== undefined && fromEnv !== '' && fromEnv.length < 16) throw new ConfigError('TOLLGATE_KEY_SECRET: must be at least 16 characters (e.g. `openssl rand -hex 32`)');
  return fromEnv || fromFile || undefined;
}

function connectionLimitsOf(tollgate: NonNullable<RawConfig['tollgate']>): ConnectionLimits {
  const limits: ConnectionLimits = {
    headersTimeoutMs: tollgate.headers_timeout_ms ?? DEFAULT_CONNECTION_LIMITS.headersTimeoutMs,
    requestTimeoutMs: tollgate.request_timeout_ms ?? DEFAULT_CONNECTION_LIMITS.requestTimeoutMs,
    keepAliveTimeoutMs: tollgate.keep_alive_timeout_ms ?? DEFAULT_CONNECTION_LIMITS.keepAliveTimeoutMs,
    maxConnections: tollgate.max_connections ?? DEFAULT_CONNECTION_LIMITS.maxConnections,
    maxConnectionsPerIp: tollgate.max_connections_per_ip ?? DEFAULT_CONNECTION_LIMITS.maxConnectionsPerIp,
  };
  // node:http refuses to start otherwise; say which key to change.
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(`tollgate.headers_timeout_ms (${limits.headersTimeoutMs}) must not exceed tollgate.request_timeout_ms (${limits.requestTimeoutMs})`);
  }
  return limits;
}

function failModeOf(fromEnv: string | undefined, fromFile: FailMode | undefined): FailMode {
  if (!fromEnv) return fromFile ?? 'closed';
  if (fromEnv === 'closed' || fromEnv === 'open') return fromEnv;
  throw new ConfigError(`TOLLGATE_FAIL_MODE: must be "closed" or "open", not "${fromEnv}"`);
}

/** `azure/gpt-4o` → azure + gpt-4o; a bare `gpt-4o` keeps the deployment's provider. */
function splitModel(model: string, provider: string): { provider: string; model: string } {
  const slash = model.indexOf('/');
  return slash < 0 ? { provider, model } : { provider: model.slice(0, slash).toLowerCase(), model: model.slice(slash + 1) };
}

function validateTimezone(zone: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new ConfigError(`litellm_settings.timezone: "${zone}" is not an IANA time zone (e.g. "UTC", "Asia/Shanghai")`);
  }
  return zone;
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const absolute = isAbsolute(path) ? path : resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${absolute}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseConfig(text, env, absolute);
}
