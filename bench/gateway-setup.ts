/**
 * @module How the benchmarks prepare a governed Tollgate: its config (one priced deployment of
 * the mock upstream, a master key, a default budget for every customer, optionally a webhook
 * per request), a data dir, the store of one configuration (embedded + in-process counters, or
 * a fresh PostgreSQL database + Redis) migrated, and the default budget made through the API.
 * Shared by `run.ts` and `customer-memory.ts`, so both measure the same gateway.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBenchDatabase } from './seed';

export const BENCH_KEY = 'sk-bench';
export const BENCH_MODEL = 'bench-gpt';
export const TOLLGATE_BIN = join(__dirname, '../../bin/tollgate.js');
const BENCH_BUDGET_ID = 'bench-default';

export interface GatewayOptions {
  upstream: string;
  /** A `spend_tracked` webhook per request, delivered to the upstream's /webhook. */
  webhooks: boolean;
  /** Prefix of the run's Redis keys, e.g. `tollgate:bench:`; a timestamp is added. */
  redisPrefix: string;
  pgAdminUrl: string;
  redisUrl: string;
}

export interface PreparedGateway {
  dataDir: string;
  configPath: string;
  /** The environment to start it with. */
  env: NodeJS.ProcessEnv;
  /** Deletes its data dir (the embedded store, ~250 MB after a bench) and drops the PostgreSQL database made for it. */
  remove(): Promise<void>;
}

function configYaml(upstream: string, webhooks: boolean): string {
  return `model_list:
  - model_name: ${BENCH_MODEL}
    litellm_params:
      model: openai/gpt-test
      api_base: ${upstream}/v1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
general_settings:
  master_key: ${BENCH_KEY}
${webhooks ? '  alerting: ["webhook"]\n' : ''}litellm_settings:
  max_end_user_budget_id: ${BENCH_BUDGET_ID}
`;
}

/** Config, data dir and migrated store of one configuration (`pglite-memory` or `postgresql-redis`). */
export async function prepareGateway(config: string, options: GatewayOptions): Promise<PreparedGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const configPath = join(dataDir, 'config.yaml');
  writeFileSync(configPath, configYaml(options.upstream, options.webhooks));
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info', TOLLGATE_DATA_DIR: dataDir, TOLLGATE_REDIS_PREFIX: `${options.redisPrefix}${Date.now()}:` };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.WEBHOOK_URL;
  if (options.webhooks) env.WEBHOOK_URL = `${options.upstream}/webhook`;
  let dropDatabase = async () => {};
  if (config === 'postgresql-redis') {
    const database = await createBenchDatabase(options.pgAdminUrl);
    env.DATABASE_URL = database.url;
    env.REDIS_URL = options.redisUrl;
    dropDatabase = database.drop;
  } else if (config !== 'pglite-memory') {
    throw new Error(`unknown BENCH_CONFIGS entry ${config} (pglite-memory, postgresql-redis)`);
  }
  execFileSync(process.execPath, [TOLLGATE_BIN, 'migrate', '--config', configPath], { env, stdio: 'ignore' });
  const remove = async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await dropDatabase();
  };
  return { dataDir, configPath, env, remove };
}

/** The default budget of the config, with dollar, rpm and tpm limits no bench load reaches. */
export async function createBenchBudget(baseUrl: string): Promise<void> {
  const created = await fetch(`${baseUrl}/budget/new`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_KEY}` },
    body: JSON.stringify({ budget_id: BENCH_BUDGET_ID, max_budget: 1_000_000, rpm_limit: 10_000_000, tpm_limit: 1_000_000_000, budget_duration: '30d' }),
  });
  if (!created.ok) throw new Error(`creating the bench budget: HTTP ${created.status} ${await created.text()}`);
}
