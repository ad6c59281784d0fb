/**
 * `node dist/bench/scale/run.js <customers>`: Tollgate against a PostgreSQL holding that many
 * customers, seeded with SQL as the API writes them (a third on shared tiers, every one with
 * a period counter). Measures start-to-ready, idle RSS, the p50 latency of a chat request for
 * a customer already cached and for one not yet cached, and the admin customer queries (with
 * their plans). The database `tollgate_scale_<customers>` is kept for reruns (SCALE_RESEED=1
 * seeds it again). Results go to stdout and bench/results/scale-<customers>-<commit>.json.
 * Env: SCALE_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres), SCALE_DB (the
 * database's name), SCALE_SEED_ONLY=1 (seed, then stop).
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { reportQuery } from '../../src/services/spend';

const ROOT = resolve(__dirname, '../../..');
const ADMIN_URL = process.env.SCALE_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const KEY = 'sk-scale-bench';
const CONFIG = `model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: mock/gpt-3.5-turbo
general_settings:
  master_key: ${KEY}
`;

async function withClient<T>(url: string, run: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

function migrate(url: string, dataDir: string, configPath: string): void {
  execSync(`${process.execPath} ${join(ROOT, 'bin/tollgate.js')} migrate --config ${configPath}`, { env: { ...process.env, DATABASE_URL: url, TOLLGATE_DATA_DIR: dataDir }, stdio: 'ignore' });
}

/** Seeds customers like the API writes them: ids cust-00000001…, every 7th with an alias, every 3rd on one of 10 tiers. */
async function seed(url: string, customers: number): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(`truncate customers, spend_counters, budgets cascade`);
    // Bulk load: the trigram indexes are built once afterwards (as the migration defines them),
    // much faster than maintained row by row.
    await client.query(`drop index if exists customers_user_id_trgm_index; drop index if exists customers_alias_trgm_index`);
    await client.query(
      `insert into budgets (budget_id, max_budget_pico, created_at, updated_at)
       select 'tier-' || g, 1000000000000000, now(), now() from generate_series(0, 9) g`,
    );
    // In chunks of a million: one statement per chunk keeps the WAL and memory bounded.
    for (let start = 1; start <= customers; start += 1_000_000) {
      const end = Math.min(customers, start + 999_999);
      await client.query(
        `insert into customers (user_id, alias, blocked, budget_id, created_at, updated_at)
         select 'cust-' || lpad(g::text, 8, '0'), case when g % 7 = 0 then 'Alias ' || g end, false,
                case when g % 3 = 0 then 'tier-' || (g % 10) end, now(), now()
         from generate_series($1::int, $2::int) g`,
        [start, end],
      );
      await client.query(
        `insert into spend_counters (customer_id, scope, period_start, spend_pico, requests, prompt_tokens, completion_tokens, updated_at)
         select 'cust-' || lpad(g::text, 8, '0'), '', 'epoch', 1000000 * (g % 100), g % 100, 0, 0, now()
         from generate_series($1::int, $2::int) g`,
        [start, end],
      );
      console.error(`seeded ${end} customers`);
    }
    await client.query(`set maintenance_work_mem = '256MB'`);
    await client.query(`create index customers_user_id_trgm_index on customers using gin (user_id gin_trgm_ops)`);
    await client.query(`create index customers_alias_trgm_index on customers using gin (alias gin_trgm_ops)`);
    await client.query('analyze customers; analyze spend_counters');
  });
}

const HISTORY_DAYS = 90;
const ACTIVE_PER_HOUR = 1000;

/**
 * 90 days of rollups as 1k req/s would leave them (the ledger itself, ~8 billion rows, is too
 * much to seed here): every hour 1,000 customer × model rows (the same 1,000 customers all
 * day, spread over the id range, two models), their daily sums, and the per-model sums.
 */
async function seedHistory(url: string, customers: number): Promise<void> {
  await withClient(url, async (client) => {
    await client.query('truncate spend_rollups, spend_rollups_daily, spend_rollups_by_model');
    const stride = Math.floor(customers / ACTIVE_PER_HOUR);
    await client.query(
      `insert into spend_rollups (hour, customer_id, model, spend_pico, charge_pico, requests, prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens)
       select date_trunc('hour', now()) - h * interval '1 hour', 'cust-' || lpad((1 + i * $1)::text, 8, '0'), 'gpt-' || (i % 2),
              3600::bigint * 1000000, 3600::bigint * 1250000, 3600, 3600 * 20, 3600 * 5, 0, 0
       from generate_series(1, $2::int) h, generate_series(0, $3::int - 1) i`,
      [stride, HISTORY_DAYS * 24, ACTIVE_PER_HOUR],
    );
    await client.query(
      `insert into spend_rollups_daily (day, customer_id, model, spend_pico, charge_pico, requests, prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens)
       select date_trunc('day', hour, 'UTC'), customer_id, model, sum(spend_pico), sum(charge_pico), sum(requests), sum(prompt_tokens), sum(completion_tokens), sum(cached_prompt_tokens), sum(cache_write_tokens)
       from spend_rollups group by 1, 2, 3`,
    );
    await client.query(
      `insert into spend_rollups_by_model (hour, model, spend_pico, charge_pico, requests, prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens)
       select hour, model, sum(spend_pico), sum(charge_pico), sum(requests), sum(prompt_tokens), sum(completion_tokens), sum(cached_prompt_tokens), sum(cache_write_tokens)
       from spend_rollups group by 1, 2`,
    );
    // A few customers blocked, and a few on tiers over their cap (lifetime counters past $1,000).
    await client.query(`update customers set blocked = true where user_id in (select 'cust-' || lpad((g * $1)::text, 8, '0') from generate_series(1, 20) g)`, [Math.floor(customers / 21)]);
    await client.query(`update spend_counters set spend_pico = 2000000000000000 where customer_id in (select 'cust-' || lpad((g * $1)::text, 8, '0') from generate_series(1, 20) g)`, [3 * Math.floor(customers / 63)]);
    // As autovacuum leaves a table in service: hint bits and visibility map set (a bulk load
    // that is only analyzed makes every first read of a page write it back).
    // (One statement each: VACUUM cannot run in a multi-statement string.)
    for (const table of ['customers', 'spend_counters', 'spend_rollups', 'spend_rollups_daily', 'spend_rollups_by_model']) await client.query(`vacuum (analyze) ${table}`);
    console.error('seeded 90 days of rollups');
  });
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function startGateway(url: string, dataDir: string, configPath: string): Promise<{ child: ChildProcess; base: string; readyMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'bin/tollgate.js'), 'start', '--config', configPath, '--port', '0', '--host', '127.0.0.1'], {
    env: { ...process.env, DATABASE_URL: url, REDIS_URL: '', TOLLGATE_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolvePort, reject) => {
    child.stdout!.on('data', (data: Buffer) => {
      output += data;
      const match = /"port":(\d+).*"msg":"Tollgate is ready"/.exec(output);
      if (match) resolvePort(Number(match[1]));
    });
    child.stderr!.on('data', (data: Buffer) => (output += data));
    child.once('exit', (code) => reject(new Error(`tollgate exited with ${code}:\n${output}`)));
  });
  return { child, base: `http://127.0.0.1:${port}`, readyMs: performance.now() - started };
}

async function timed(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function chat(base: string, user: string): Promise<void> {
  const response = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
  });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`chat for ${user}: ${response.status}`);
}

async function gql(base: string, query: string): Promise<void> {
  const response = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ query }), signal: AbortSignal.timeout(60_000) });
  const body = (await response.json()) as { errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
}

const idOf = (n: number) => `cust-${String(n).padStart(8, '0')}`;

async function main(): Promise<void> {
  const customers = Number(process.argv[2] ?? 10_000);
  if (!Number.isInteger(customers) || customers < 1000) throw new Error('usage: run.js <customers, at least 1000>');
  const name = process.env.SCALE_DB ?? `tollgate_scale_${customers}`;
  const url = ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-scale-'));
  const configPath = join(dataDir, 'config.yaml');
  writeFileSync(configPath, CONFIG);
  const exists = await withClient(ADMIN_URL, async (client) => (await client.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1);
  if (!exists) await withClient(ADMIN_URL, (client) => client.query(`create database ${name}`));
  migrate(url, dataDir, configPath);
  const seeded = await withClient(url, async (client) => Number((await client.query(`select count(*)::int as n from customers`)).rows[0].n));
  if (process.env.SCALE_RESEED || seeded !== customers) {
    const seedMs = await timed(() => seed(url, customers));
    console.error(`seeding took ${(seedMs / 1000).toFixed(1)} s`);
  }
  const history = await withClient(url, async (client) => Number((await client.query(`select count(*)::int as n from spend_rollups_daily`)).rows[0].n));
  if (process.env.SCALE_RESEED || history === 0) await seedHistory(url, customers);
  if (process.env.SCALE_SEED_ONLY) return;

  const loadAtStart = loadavg().map((value) => Number(value.toFixed(2)));
  // Start-up three times (median): this machine's load moves single runs by seconds.
  const startups: number[] = [];
  const quick = Boolean(process.env.SCALE_QUERIES_ONLY); // iterate on the queries: one start, no latency loop
  for (let run = 0; run < (quick ? 0 : 2); run++) {
    const probe = await startGateway(url, dataDir, configPath);
    startups.push(probe.readyMs);
    probe.child.kill('SIGTERM');
    await new Promise((resolveExit) => probe.child.once('exit', resolveExit));
  }
  const gateway = await startGateway(url, dataDir, configPath);
  startups.push(gateway.readyMs);
  try {
    await new Promise((resolveWait) => setTimeout(resolveWait, 2000));
    const idleRssMb = rssMb(gateway.child.pid!);
    // Cached: one customer over and over. Uncached: each request a customer never served yet.
    await chat(gateway.base, idOf(1));
    const cached: number[] = [];
    const uncached: number[] = [];
    const stride = Math.floor(customers / 401);
    for (let i = 0; i < (quick ? 0 : 400); i++) {
      cached.push(await timed(() => chat(gateway.base, idOf(1))));
      uncached.push(await timed(() => chat(gateway.base, idOf(2 + i * stride))));
    }
    // Again, for other customers, with the pages of customers and counters in the OS cache
    // (pg_prewarm 'read'), as on a database server sized for its working set: what a miss
    // costs Tollgate, without this machine's virtual-disk reads (the run above has them).
    const warmCached: number[] = [];
    const warmUncached: number[] = [];
    if (!quick) {
      await withClient(url, (client) =>
        client.query(`create extension if not exists pg_prewarm;
          select pg_prewarm('customers', 'read'), pg_prewarm('customers_pkey', 'read'), pg_prewarm('spend_counters', 'read'), pg_prewarm('spend_counters_pkey', 'read')`),
      );
      for (let i = 0; i < 400; i++) {
        warmCached.push(await timed(() => chat(gateway.base, idOf(1))));
        warmUncached.push(await timed(() => chat(gateway.base, idOf(3 + i * stride))));
      }
    }
    const queries: Record<string, string> = {
      first_page: '{ customers(first: 50) { nodes { id } pageInfo { endCursor } } }',
      keyset_middle: `{ customers(first: 50, after: "${idOf(Math.floor(customers / 2))}") { nodes { id } } }`,
      search_substring: '{ customers(first: 50, search: "12345") { nodes { id } } }',
      search_alias: '{ customers(first: 50, search: "alias 123456") { nodes { id } } }',
      // Matches every 7th customer's alias: the trigram index finds them all, then they are sorted.
      search_common: '{ customers(first: 50, search: "alias 77") { nodes { id } } }',
      search_with_count: '{ customers(first: 50, search: "0042") { nodes { id } totalCount } }',
    };
    const queryMs: Record<string, number> = {};
    const only = process.env.SCALE_QUERY_FILTER ? new RegExp(process.env.SCALE_QUERY_FILTER) : null;
    for (const [label, query] of Object.entries(queries)) {
      if (only && !only.test(label)) continue;
      await gql(gateway.base, query);
      const runs: number[] = [];
      for (let i = 0; i < 5; i++) runs.push(await timed(() => gql(gateway.base, query)));
      queryMs[label] = median(runs);
    }
    // Reports over 90 whole days (rollups only), a statement, the overview, lists by spend and status.
    const DAY = 86_400_000;
    const today = Math.floor(Date.now() / DAY) * DAY;
    const from = new Date(today - HISTORY_DAYS * DAY).toISOString();
    const to = new Date(today + DAY).toISOString();
    const active = idOf(1 + Math.floor(customers / ACTIVE_PER_HOUR) * 7);
    const lastMonth = new Date(today - 20 * DAY).toISOString().slice(0, 7);
    const reports: Record<string, string> = {
      report_90d_by_day: `{ spendReport(from: "${from}", to: "${to}", groupBy: day) { key charge } }`,
      report_90d_by_model: `{ spendReport(from: "${from}", to: "${to}", groupBy: model) { key charge } }`,
      report_90d_by_customer: `{ spendReport(from: "${from}", to: "${to}", groupBy: customer) { key charge } }`,
      report_90d_one_customer_by_day: `{ spendReport(from: "${from}", to: "${to}", groupBy: day, customerId: "${active}") { key charge } }`,
      overview_series_90d: `{ overview(from: "${from}", to: "${to}") { series { key spend } } }`,
      overview_top_customers_90d: `{ overview(from: "${from}", to: "${to}") { topCustomers(first: 10) { key spend } } }`,
      overview_by_tier_90d: `{ overview(from: "${from}", to: "${to}") { byTier { key spend } } }`,
      overview_today_last30: `{ overview(from: "${from}", to: "${to}") { today { spend } last30Days { spend } } }`,
      overview_period_spend: `{ overview(from: "${from}", to: "${to}") { periodSpend } }`,
      overview_near_cap: `{ overview(from: "${from}", to: "${to}") { nearCap(fraction: 0.8, first: 20) { customerId } } }`,
      customers_sort_spend_desc: '{ customers(first: 50, sort: spend_desc) { nodes { id } } }',
      customers_sort_spend_asc: '{ customers(first: 50, sort: spend_asc) { nodes { id } } }',
      customers_status_blocked: '{ customers(first: 50, status: blocked) { nodes { id } } }',
      customers_status_over_budget: '{ customers(first: 50, status: over_budget) { nodes { id } } }',
      customers_status_active: '{ customers(first: 50, status: active) { nodes { id } } }',
      // The budgets page: each tier's customer count (a third of all customers on 10 tiers).
      budgets_with_customer_counts: '{ budgets { id customerCount } }',
    };
    const failed: Record<string, string> = {};
    for (const [label, query] of Object.entries(reports)) {
      if (only && !only.test(label)) continue;
      try {
        await gql(gateway.base, query);
        const runs: number[] = [];
        for (let i = 0; i < 5; i++) runs.push(await timed(() => gql(gateway.base, query)));
        queryMs[label] = median(runs);
      } catch (error) {
        failed[label] = (error as Error).message; // recorded, and the other numbers still measured
      }
      console.error(label, queryMs[label]?.toFixed(1) ?? failed[label]);
    }
    const statementRuns: number[] = [];
    for (let i = 0; i < 6; i++) {
      statementRuns.push(
        await timed(async () => {
          const response = await fetch(`${gateway.base}/customer/statement?end_user_id=${active}&period=${lastMonth}`, { headers: { authorization: `Bearer ${KEY}` } });
          await response.arrayBuffer();
          if (response.status !== 200) throw new Error(`statement: ${response.status}`);
        }),
      );
    }
    queryMs.statement_one_month = median(statementRuns.slice(1));
    const plans = await withClient(url, async (client) => {
      const explain = async (sql: string, params: unknown[] = []) => ((await client.query(`explain ${sql}`, params)).rows as { 'QUERY PLAN': string }[]).map((row) => row['QUERY PLAN']).join('\n');
      const report = (groupBy: 'day' | 'model' | 'customer', customerId: string | null) => {
        const query = reportQuery(new Date(from), new Date(to), groupBy, customerId, 'UTC', Date.now());
        let index = 0;
        return explain(query.sql.replace(/\?/g, () => `$${++index}`), query.params);
      };
      return {
        report_90d_by_day: await report('day', null),
        report_90d_by_customer: await report('customer', null),
        report_90d_one_customer_by_day: await report('day', active),
        search: await explain(`select user_id from customers where (user_id ilike '%12345%' or alias ilike '%12345%') order by user_id limit 51`),
        keyset: await explain(`select user_id from customers where user_id > '${idOf(Math.floor(customers / 2))}' order by user_id limit 51`),
        miss: await explain(`select user_id from customers c where c.user_id = '${idOf(7)}'`),
      };
    });
    const afterRssMb = rssMb(gateway.child.pid!);
    const result = {
      customers,
      commit: execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim(),
      ranAt: new Date().toISOString(),
      startToReadyMs: Math.round(median(startups)),
      idleRssMb: Math.round(idleRssMb),
      rssAfter800NewCustomersMb: Math.round(afterRssMb),
      p50CachedMs: Number(median(cached).toFixed(2)),
      p50UncachedMs: Number(median(uncached).toFixed(2)),
      p50CachedPgWarmMs: warmCached.length ? Number(median(warmCached).toFixed(2)) : null,
      p50UncachedPgWarmMs: warmUncached.length ? Number(median(warmUncached).toFixed(2)) : null,
      loadAverage: { atStart: loadAtStart, atEnd: loadavg().map((value) => Number(value.toFixed(2))) },
      failedQueries: failed,
      customersQueryP50Ms: Object.fromEntries(Object.entries(queryMs).map(([key, value]) => [key, Number(value.toFixed(1))])),
      plans,
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, `bench/results/scale-${customers}-${result.commit}.json`), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    gateway.child.kill('SIGTERM');
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
