/**
 * `npm run bench`: the same chat-completion load (JSON and SSE) against the mock upstream
 * directly, a bare undici proxy, a bare http-proxy proxy, and Tollgate with all governance on
 * (auth, customer lookup, default budget with rpm/tpm/dollar limits, reservations, metering,
 * ledger). Every target runs in a process of its own; autocannon runs here. Results go to
 * stdout and bench/results/<date>-<commit>-<store>-<counters>.json.
 * Options (env): BENCH_SECONDS (default 8), BENCH_CONNECTIONS (default 50), DATABASE_URL, REDIS_URL.
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const children: ChildProcess[] = [];

/** Starts a process and resolves with the URL it prints once it listens. */
function startProcess(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data;
      const match = ready.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (data: Buffer) => (output += data));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}:\n${output}`)));
  });
}

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
  const serve = join(__dirname, 'serve.js');
  const listening = /LISTENING (\S+)/;
  const upstream = await startProcess([serve, 'upstream'], listening);
  const bareUndici = await startProcess([serve, 'bare-undici', upstream], listening);
  const bareHttpProxy = await startProcess([serve, 'bare-http-proxy', upstream], listening);
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const configPath = join(dataDir, 'config.yaml');
  writeFileSync(
    configPath,
    `model_list:
  - model_name: bench-gpt
    litellm_params:
      model: openai/gpt-test
      api_base: ${upstream}/v1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
general_settings:
  master_key: ${KEY}
litellm_settings:
  max_end_user_budget_id: bench-default
`,
  );
  const counters = process.env.REDIS_URL ? 'redis' : 'memory';
  const store = process.env.DATABASE_URL ? 'postgresql' : 'pglite';
  const tollgate = await startProcess(
    [join(__dirname, '../../bin/tollgate.js'), 'start', '--config', configPath, '--port', '0', '--host', '127.0.0.1'],
    /"port":(\d+).*"msg":"Tollgate is ready"/,
    { ...process.env, LOG_LEVEL: 'info', TOLLGATE_DATA_DIR: dataDir, TOLLGATE_REDIS_PREFIX: `tollgate:bench:${Date.now()}:` },
  ).then((port) => `http://127.0.0.1:${port}`);
  await fetch(`${tollgate}/budget/new`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ budget_id: 'bench-default', max_budget: 1_000_000, rpm_limit: 10_000_000, tpm_limit: 1_000_000_000, budget_duration: '30d' }),
  });

  const rows: Row[] = [];
  // Warm-up (JIT, tokenizer load, first customers) so the first measured cell is not penalised.
  await measure('warm-up', tollgate, 'json', 'bench-gpt');
  for (const mode of ['json', 'sse'] as const) {
    // Direct upstream paths have no /v1 prefix handling differences: the upstream ignores the path.
    rows.push(await measure('direct upstream', upstream, mode, 'gpt-test'));
    rows.push(await measure('bare undici proxy', bareUndici, mode, 'gpt-test'));
    rows.push(await measure('bare http-proxy', bareHttpProxy, mode, 'gpt-test'));
    rows.push(await measure('tollgate (governed)', tollgate, mode, 'bench-gpt'));
  }
  // Every 2xx Tollgate answered must be in its ledger: count the rows through its own API.
  const customers = (await (await fetch(`${tollgate}/customer/list?page_size=1000`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { spend: number }[];
  const meteredDollars = customers.reduce((sum, customer) => sum + customer.spend, 0);
  const metered = rows.filter((r) => r.target.startsWith('tollgate'));

  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    /* not a checkout */
  }
  console.log(`\nTollgate benchmark — ${CONNECTIONS} connections, ${SECONDS}s per cell, commit ${commit}, store ${store}, counters ${counters}; each target in its own process`);
  console.table(rows.map((r) => ({ target: r.target, mode: r.mode, 'req/s': r.rps, 'p50 ms': r.p50, 'p99 ms': r.p99, errors: r.errors, non2xx: r.non2xx })));
  console.log(`spend metered by Tollgate: $${meteredDollars.toFixed(6)} (non-2xx responses: ${metered.reduce((sum, r) => sum + r.non2xx, 0)})`);
  const results = join(__dirname, '../../bench/results');
  mkdirSync(results, { recursive: true });
  const file = join(results, `${new Date().toISOString().slice(0, 10)}-${commit}-${store}-${counters}.json`);
  writeFileSync(file, JSON.stringify({ commit, date: new Date().toISOString(), seconds: SECONDS, connections: CONNECTIONS, store, counters, rows, meteredDollars }, null, 2));
  console.log(`results written to ${file}`);

  for (const child of children) child.kill('SIGTERM');
}

main().catch((error) => {
  console.error(error);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
