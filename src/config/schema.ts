/**
 * @module The accepted shape of LiteLLM's config.yaml (the keys Tollgate acts on), plus
 * our own `tollgate:` section. Values here are already resolved from `os.environ/NAME`.
 */
import { z } from 'zod';

const nonNegativeNumber = z.coerce.number().refine((n) => Number.isFinite(n) && n >= 0, 'must be a finite number >= 0');
const optionalPrice = nonNegativeNumber.optional();

export const litellmParamsSchema = z.looseObject({
  model: z.string().regex(/^[a-z0-9_.-]+\/.+$/i, 'must look like "provider/model", e.g. "openai/gpt-4o" or "mock/gpt-3.5-turbo"'),
  api_base: z.string().url().optional(),
  api_key: z.string().optional(),
  api_version: z.string().optional(),
  input_cost_per_token: optionalPrice,
  output_cost_per_token: optionalPrice,
  cache_read_input_token_cost: optionalPrice,
  cache_creation_input_token_cost: optionalPrice,
  cache_creation_input_token_cost_above_1hr: optionalPrice,
  max_tokens: z.coerce.number().int().positive().optional(),
  timeout: z.coerce.number().positive().optional(),
  // Tollgate extensions for the built-in mock provider.
  mock_latency_ms: z.coerce.number().int().min(0).optional(),
  mock_response: z.string().optional(),
});

export const modelInfoSchema = z.looseObject({
  input_cost_per_token: optionalPrice,
  output_cost_per_token: optionalPrice,
  cache_read_input_token_cost: optionalPrice,
  cache_creation_input_token_cost: optionalPrice,
  cache_creation_input_token_cost_above_1hr: optionalPrice,
  max_output_tokens: z.coerce.number().int().positive().optional(),
  max_tokens: z.coerce.number().int().positive().optional(),
  // The model an azure/ deployment runs (LiteLLM's key), used to find its price.
  base_model: z.string().optional(),
  // How /v1/responses and /v1/messages reach this deployment: its own endpoint, or translated
  // through Chat Completions (defaults: native for openai/ and azure/, resp. anthropic/).
  responses_api: z.enum(['native', 'translate']).optional(),
  messages_api: z.enum(['native', 'translate']).optional(),
});

export const configSchema = z.object({
  model_list: z
    .array(
      z.object({
        model_name: z.string().min(1),
        litellm_params: litellmParamsSchema,
        model_info: modelInfoSchema.optional(),
      }),
    )
    .min(1, 'at least one model is required'),
  general_settings: z
    .object({
      master_key: z.string().min(1, 'is required (the admin key, e.g. "sk-1234")'),
      database_url: z.string().optional(),
      alerting: z.array(z.string()).optional(),
      alerting_args: z.record(z.string(), z.unknown()).optional(),
    })
    .loose(),
  litellm_settings: z
    .object({
      max_end_user_budget_id: z.string().min(1).optional(),
      timezone: z.string().optional(),
    })
    .loose()
    .optional(),
  router_settings: z.object({ redis_url: z.string().optional() }).loose().optional(),
  tollgate: z
    .object({
      data_dir: z.string().optional(),
      ledger_flush_interval_ms: z.coerce.number().int().positive().optional(),
      in_flight_journal_interval_ms: z.coerce.number().int().positive().optional(),
      ledger_retention_days: z.coerce.number().int().positive().optional(),
      max_body_bytes: z.coerce.number().int().positive().optional(),
      default_max_output_tokens: z.coerce.number().int().positive().optional(),
      upstream_timeout_ms: z.coerce.number().int().positive().optional(),
      fail_mode: z.enum(['closed', 'open']).optional(),
      reservation_lease_seconds: z.coerce.number().int().positive().optional(),
      redis_command_timeout_ms: z.coerce.number().int().positive().max(60_000).optional(),
      customer_cache_size: z.coerce.number().int().positive().max(100_000_000).optional(),
      heap_growing_percent: z.coerce.number().int().min(0).max(300).optional(),
      malloc_mmap_threshold_kb: z.coerce.number().int().min(0).max(32_768).optional(),
      idle_collection_seconds: z.coerce.number().int().min(0).max(3600).optional(),
      graphql_limits: z
        .object({
          max_depth: z.coerce.number().int().positive().optional(),
          max_cost: z.coerce.number().int().positive().optional(),
          max_aliases: z.coerce.number().int().min(0).optional(),
          max_directives: z.coerce.number().int().min(0).optional(),
          max_tokens: z.coerce.number().int().positive().optional(),
          time_budget_ms: z.coerce.number().int().positive().optional(),
        })
        .strict()
        .optional(),
      headers_timeout_ms: z.coerce.number().int().positive().optional(),
      request_timeout_ms: z.coerce.number().int().positive().optional(),
      keep_alive_timeout_ms: z.coerce.number().int().positive().optional(),
      max_connections: z.coerce.number().int().min(0).optional(),
      max_connections_per_ip: z.coerce.number().int().min(0).optional(),
      drain_timeout_ms: z.coerce.number().int().positive().optional(),
      customer_id_sources: z
        .array(z.string().regex(/^(?:user|safety_identifier|metadata\.user_id|header:[A-Za-z0-9-]+)$/, 'each source is "user", "safety_identifier", "metadata.user_id" or "header:<name>"'))
        .min(1)
        .optional(),
      unknown_customers: z.enum(['create', 'refuse']).optional(),
      credits_low_threshold: z.coerce.number().gt(0).lt(1).optional(),
      budget_exceeded_status: z.coerce.number().pipe(z.union([z.literal(402), z.literal(429)])).optional(),
      response_retention_days: z.coerce.number().positive().optional(),
      key_secret: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
      // Checked in detail by src/exporters/settings.ts (errors name tollgate.exporters[i].key).
      exporters: z.array(z.unknown()).optional(),
    })
    .optional(),
});

export type RawConfig = z.infer<typeof configSchema>;

/** Keys we read in each section; anything else is reported once as ignored. */
export const KNOWN_KEYS: Record<string, string[] | null> = {
  model_list: null,
  general_settings: ['master_key', 'database_url', 'alerting', 'alerting_args'],
  litellm_settings: ['max_end_user_budget_id', 'timezone'],
  router_settings: ['redis_url'],
  tollgate: null,
  environment_variables: null,
};
