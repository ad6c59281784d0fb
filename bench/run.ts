/**
 * `npm run bench`: the same chat-completion load (JSON and SSE) against the mock upstream
 * directly, a bare undici proxy, a bare http-proxy proxy, and Tollgate with all governance on
 * (auth, customer lookup, default budget with rpm/tpm/dollar limits, reservations, metering,
 * ledger). Results go to stdout and bench/results/<date>-<commit>.json.
 * Options (env): BENCH_SECONDS (default 8), BENCH_CONNECTIONS (default 50), DATABASE_URL, REDIS_URL.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { parseConfig } from '../src/config/load';
import { startGateway } from '../src/server/gateway';
import { createLogger } from '../src/observability/logger';
import { startBareHttpProxy, startBareUndiciProxy } from './bare-proxies';
import { startBenchUpstream } from './upstream';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const KEY = 'sk-bench';

interface Row {
  target: string;
  mode: 'json' | 'sse';
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function measure(target: string, url: string, mode: 'json' | 'sse', model: string): Promise<Row> {
  let counter = 0;
  const result = await autocannon({
    url: `${url}/v1/chat/completions`,
    connections: CONNECTIONS,
    duration: SECONDS,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ model, user: `bench-customer-${counter++ % 100}`, stream: mode === 'sse', max_tokens: 64, messages: [{ role: 'user', content: 'Say something about foxes.' }] }),
        }),
      },
    ],
  });
  return { target, mode, rps: Math.round(result.requests.average), p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

async function main(): Promise<void> {
  const upstream = await startBenchUpstream();
  const bareUndici = await startBareUndiciProxy(upstream.url);
  const bareHttpProxy = await startBareHttpProxy(upstream.url);
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const yaml = `model_list:
  - model_name: bench-gpt
    litellm_params:
      model: openai/gpt-test
      api_base: ${upstream.url}/v1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
general_settings:
  master_key: ${KEY}
litellm_settings:
  max_end_user_budget_id: bench-default
`;
  const config = parseConfig(yaml, {
    TOLLGATE_DATA_DIR: dataDir,
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, TOLLGATE_REDIS_PREFIX: `tollgate:bench:${Date.now()}:` } : {}),
  });
  const logger = createLogger();
  logger.level = 'warn';
  const gateway = await startGateway(config, { port: 0, host: '127.0.0.1', logger });
  await fetch(`${gateway.url}/budget/new`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ budget_id: 'bench-default', max_budget: 1_000_000, rpm_limit: 10_000_000, tpm_limit: 1_000_000_000, budget_duration: '30d' }),
  });

  const rows: Row[] = [];
  // Warm-up (JIT, tokenizer load, first customers) so the first measured cell is not penalised.
  await measure('warm-up', gateway.url, 'json', 'bench-gpt');
  for (const mode of ['json', 'sse'] as const) {
    // Direct upstream paths have no /v1 prefix handling differences: the upstream ignores the path.
    rows.push(await measure('direct upstream', upstream.url, mode, 'gpt-test'));
    rows.push(await measure('bare undici proxy', bareUndici.url, mode, 'gpt-test'));
    rows.push(await measure('bare http-proxy', bareHttpProxy.url, mode, 'gpt-test'));
    rows.push(await measure('tollgate (governed)', gateway.url, mode, 'bench-gpt'));
  }
  await gateway.ledger.flush();
  const knex = gateway.database.orm.em.getConnection().getKnex();
  const ledgerRows = Number(((await knex.raw('select count(*)::int as n from spend_ledger')).rows as { n: number }[])[0]!.n);
  const metered = rows.filter((r) => r.target.startsWith('tollgate'));

  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    /* not a checkout */
  }
  const counters = process.env.REDIS_URL ? 'redis' : 'memory';
  console.log(`\nTollgate benchmark — ${CONNECTIONS} connections, ${SECONDS}s per cell, commit ${commit}, store ${gateway.database.kind}, counters ${counters}`);
  console.table(rows.map((r) => ({ target: r.target, mode: r.mode, 'req/s': r.rps, 'p50 ms': r.p50, 'p99 ms': r.p99, errors: r.errors, non2xx: r.non2xx })));
  console.log(`ledger rows written by Tollgate: ${ledgerRows} (every 2xx response metered: ${metered.every((r) => r.non2xx === 0)})`);
  const results = join(__dirname, '../../bench/results');
  mkdirSync(results, { recursive: true });
  const file = join(results, `${new Date().toISOString().slice(0, 10)}-${commit}-${gateway.database.kind}-${counters}.json`);
  writeFileSync(file, JSON.stringify({ commit, date: new Date().toISOString(), seconds: SECONDS, connections: CONNECTIONS, store: gateway.database.kind, counters, rows, ledgerRows }, null, 2));
  console.log(`results written to ${file}`);

  await gateway.stop();
  await bareUndici.close();
  for (const server of [upstream.server, bareUndici.server, bareHttpProxy.server]) {
    server.closeAllConnections();
    server.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
