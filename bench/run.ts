/**
 * `npm run bench`: what governance costs on top of a bare proxy, measured in one sitting.
 *
 * The same chat-completion load (JSON and SSE, autocannon, N connections) and the same unloaded
 * probe (one request at a time: the whole JSON answer, the first SSE event) against the mock
 * upstream directly, three bare forwarders (the `node:http` pipe is the floor) and Tollgate with
 * every governance feature on (key auth, customer resolution, a default budget with dollar,
 * rpm and tpm limits checked and reserved on every request, metering, the ledger, a
 * `spend_tracked` webhook per request), once on the embedded store with in-process counters and
 * once on PostgreSQL with Redis counters, each over a store seeded with customers. For each
 * target: req/s, p50/p99, CPU ms per request of its process tree (including the work the load
 * leaves behind, drained before CPU is read), RSS idle (settled), peak under the load (the
 * high-water mark restarted at idle) and start-up's peak.
 * Two more floors, one per store, do only the I/O a governed request needs (required-io-proxy.ts).
 * Every target runs in a process of its own; autocannon and the probe run here. The floor is
 * measured just before and just after every other cell (half a cell each), and that cell's
 * ratio divides by the mean of the two: on a virtual machine the floor drifts within minutes.
 *
 * Results: stdout, and bench/results/<time>/results.json + results.md (ratios to the floor).
 * Options (env): BENCH_SECONDS (8), BENCH_CONNECTIONS (50), BENCH_SEED_CUSTOMERS (100000),
 * BENCH_CONFIGS (`pglite-memory,postgresql-redis`), BENCH_PG_ADMIN_URL
 * (postgresql://postgres@127.0.0.1:5432/postgres), BENCH_REDIS_URL (redis://127.0.0.1:6379),
 * BENCH_BASELINES (1; 0 measures only the upstream directly and the floor), BENCH_WEBHOOKS (1; 0
 * runs Tollgate without the per-request `spend_tracked` webhook, to see its share), BENCH_CPU_PROF_DIR
 * (Tollgate runs under `node --cpu-prof` writing there; summarise with bench/profile-summary),
 * BENCH_MODES (`json,sse`; one of them alone, e.g. to profile it), BENCH_IDLE_SETTLE_MS (30000: how long a
 * gateway sits without work before its idle memory is read), BENCH_NODE_FLAGS (Node/V8 flags for
 * Tollgate's process, to try one).
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { cpuMilliseconds, peakRssMegabytes, resetPeakRss, rssMegabytes, waitUntilQuiet } from './process-stats';
import { probe } from './probe';
import { BENCH_KEY, BENCH_MODEL, createBenchBudget, prepareGateway, TOLLGATE_BIN } from './gateway-setup';
import { createBenchDatabase, seedEmbedded, seedPostgres } from './seed';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SEED_CUSTOMERS = Number(process.env.BENCH_SEED_CUSTOMERS ?? 100_000);
const CONFIGS = (process.env.BENCH_CONFIGS ?? 'pglite-memory,postgresql-redis').split(',');
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const BASELINES = process.env.BENCH_BASELINES !== '0';
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR;
/** Node/V8 flags for Tollgate's process, e.g. `--max-semi-space-size=32`, to try a setting. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const WEBHOOKS = process.env.BENCH_WEBHOOKS !== '0';
/** Which loads to run (both by default; one alone to profile it). */
const MODES = (process.env.BENCH_MODES ?? 'json,sse').split(',') as Mode[];
const KEY = BENCH_KEY;

type Mode = 'json' | 'sse';

interface Target {
  name: string;
  url: string;
  pid: number;
  model: string;
}

interface Row {
  target: string;
  mode: Mode;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** CPU of the load and of the work it left behind (drained before reading), per request. */
  cpuMsPerRequest: number;
  /** How long the target kept working after the load ended (webhooks, ledger), ms. */
  drainMs: number;
  /** Unloaded probe: median ms to the whole JSON body, or to the first SSE event. */
  probeMs: number;
  probeP90Ms: number;
  /**
   * The floor's CPU per request, measured just before and just after this cell (mean): on a
   * virtual machine the floor drifts by up to 2 × within a sitting, so each ratio divides by
   * the floor of its own minutes.
   */
  floorCpuMsPerRequest?: number;
  /**
   * The upstream's own probe, just before and just after this target's (mean). Unloaded, a
   * round trip on this virtual machine took 0.1 ms in one minute and 0.5 ms in another: the
   * latency a target adds is its probe minus the upstream's probe of the same minutes.
   */
  upstreamProbeMs?: number;
}

interface MemoryRow {
  target: string;
  /** 3 s after ready: start-up's garbage and V8's grown young generation are still there. */
  startMb?: number;
  /** After IDLE_SETTLE_MS with nothing to do (V8's memory reducer has run), before any load. */
  idleMb: number;
  /** Peak during the load cells (warm-up included): the high-water mark restarted at idle. */
  peakMb: number;
  /** Peak from start to the idle reading (start-up, migrations check, WASM compilation). */
  startupPeakMb?: number;
  /** After the load, drained and left idle as long again. */
  afterLoadMb?: number;
}

/**
 * How long a gateway sits without work before its idle memory is read. V8 keeps the young
 * generation start-up grew (to 32 MB) until its memory reducer runs, some 10–30 s into idleness.
 */
const IDLE_SETTLE_MS = Number(process.env.BENCH_IDLE_SETTLE_MS ?? 30_000);
/** Quiet enough: under `--cpu-prof` the profiler's own sampling takes ~7 % of a core. */
const QUIET = { maxCoreFraction: CPU_PROF_DIR ? 0.15 : 0.02 };

const children: ChildProcess[] = [];
/** The mock upstream, probed around every other target's probe (see `Row.upstreamProbeMs`). */
let upstreamTarget: Target | null = null;

/** Starts a process and resolves once it prints a line matching `ready` (group 1 = URL or port). */
function startProcess(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<{ match: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data;
      const match = ready.exec(output);
      if (match) resolve({ match: match[1]!, child });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (data: Buffer) => (output += data));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}:\n${output}`)));
  });
}

async function startServe(kind: string, ...args: string[]): Promise<{ url: string; pid: number }> {
  const { match, child } = await startProcess([join(__dirname, 'serve.js'), kind, ...args], /LISTENING (\S+)/);
  return { url: match, pid: child.pid! };
}

function requestBody(mode: Mode, model: string, index: number): string {
  return JSON.stringify({ model, user: `bench-customer-${index % 100}`, stream: mode === 'sse', max_tokens: 64, messages: [{ role: 'user', content: 'Say something about foxes.' }] });
}

async function measure(target: Target, mode: Mode, seconds = SECONDS): Promise<Row> {
  let counter = 0;
  const cpuBefore = cpuMilliseconds(target.pid);
  const result = await autocannon({
    url: `${target.url}/v1/chat/completions`,
    connections: CONNECTIONS,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    requests: [{ setupRequest: (request) => ({ ...request, body: requestBody(mode, target.model, counter++) }) }],
  });
  const drainMs = await waitUntilQuiet(target.pid, QUIET);
  const cpu = cpuMilliseconds(target.pid) - cpuBefore;
  // On a quiet target: "unloaded" is one request at a time with nothing else going on.
  const probeOf = (probed: Target) => probe(probed.url, (index) => requestBody(mode, probed.model, index), { authorization: `Bearer ${KEY}` }, mode === 'sse');
  const upstream = upstreamTarget && upstreamTarget !== target ? upstreamTarget : null;
  const upstreamBefore = upstream && (await probeOf(upstream));
  const unloaded = await probeOf(target);
  const upstreamAfter = upstream && (await probeOf(upstream));
  return {
    target: target.name,
    mode,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    cpuMsPerRequest: result.requests.total ? cpu / result.requests.total : NaN,
    drainMs,
    probeMs: unloaded.medianMs,
    probeP90Ms: unloaded.p90Ms,
    upstreamProbeMs: upstreamBefore && upstreamAfter ? (upstreamBefore.medianMs + upstreamAfter.medianMs) / 2 : undefined,
  };
}

interface GovernedRun {
  target: Target;
  memory: () => Promise<MemoryRow>;
  stop: () => Promise<void>;
}

/** Tollgate on one store and one kind of counters, over a store seeded with customers. */
async function startTollgate(config: string, upstream: string): Promise<GovernedRun> {
  const { dataDir, configPath, env, remove } = await prepareGateway(config, { upstream, webhooks: WEBHOOKS, redisPrefix: 'tollgate:bench:', pgAdminUrl: PG_ADMIN_URL, redisUrl: REDIS_URL });
  const start = (profiled: boolean) => {
    const profile = profiled && CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(CPU_PROF_DIR, config)}`] : [];
    return startProcess([...NODE_FLAGS, ...profile, TOLLGATE_BIN, 'start', '--config', configPath, '--port', '0', '--host', '127.0.0.1'], /"port":(\d+).*"msg":"Tollgate is ready"/, env);
  };
  // The budget is made through the API before the customers are seeded: made after, the
  // default budget's first appearance recomputes the period of every customer without one
  // (100k of them), which is an admin operation's cost, not what this bench measures.
  const first = await start(false);
  await createBenchBudget(`http://127.0.0.1:${first.match}`);
  first.child.kill('SIGTERM');
  await new Promise((resolve) => first.child.once('exit', resolve));
  if (SEED_CUSTOMERS > 0) {
    if (env.DATABASE_URL) await seedPostgres(env.DATABASE_URL, SEED_CUSTOMERS);
    else await seedEmbedded(dataDir, SEED_CUSTOMERS);
  }
  const { match: port, child } = await start(true);
  const url = `http://127.0.0.1:${port}`;
  // Started, budget made, nothing served yet: once soon after ready, once settled.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const startMb = rssMegabytes(child.pid!);
  await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
  const idleMb = rssMegabytes(child.pid!);
  // What follows is the load: its peak is measured from here.
  const startupPeakMb = peakRssMegabytes(child.pid!);
  if (!resetPeakRss(child.pid!)) throw new Error('cannot restart the peak RSS of the gateway (/proc/<pid>/clear_refs): this bench needs Linux 4.0+ and its own processes');
  const name = `tollgate ${config}${WEBHOOKS ? '' : ' (no webhook)'}`;
  return {
    target: { name, url, pid: child.pid!, model: BENCH_MODEL },
    memory: async () => {
      await waitUntilQuiet(child.pid!, QUIET);
      await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
      return { target: name, startMb, idleMb, peakMb: peakRssMegabytes(child.pid!), startupPeakMb, afterLoadMb: rssMegabytes(child.pid!) };
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await remove();
    },
  };
}

function commitOf(): string {
  try {
    return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

const FLOOR = 'bare node:http';
/** The floor's measurements around each other target's cells. */
const FLOOR_BRACKET = 'bare node:http (bracket)';
/** Seconds of a bracketing floor cell: enough requests for its CPU per request, in half a cell. */
const BRACKET_SECONDS = Math.max(2, Math.round(SECONDS / 2));
/** The second floor (required-io-proxy.ts), per store: the I/O of a governed request, none of its logic. */
const REQUIRED_IO: Record<string, string> = { 'postgresql-redis': 'floor + required I/O (PostgreSQL + Redis)', 'pglite-memory': 'floor + required I/O (embedded)' };
const isRequiredIoFloor = (target: Target) => Object.values(REQUIRED_IO).includes(target.name);

function memoryCell(mem: MemoryRow): string {
  const extra = mem.startMb === undefined ? '' : ` (${Math.round(mem.startMb)}; ${Math.round(mem.afterLoadMb!)}; ${Math.round(mem.startupPeakMb!)})`;
  return `${Math.round(mem.idleMb)} → ${Math.round(mem.peakMb)} MB${extra}`;
}

/** The README table: each target against the `node:http` floor, in the same sitting. */
function markdownReport(rows: Row[], memory: MemoryRow[], header: string): string {
  const floorRuns = (mode: Mode) => rows.filter((r) => (r.target === FLOOR || r.target === FLOOR_BRACKET) && r.mode === mode);
  const floorOf = (row: Row) => row.floorCpuMsPerRequest ?? row.cpuMsPerRequest;
  const spread = (mode: Mode) => {
    const cpu = floorRuns(mode).map((r) => r.cpuMsPerRequest);
    return `${mode} ${Math.min(...cpu).toFixed(3)}–${Math.max(...cpu).toFixed(3)} ms (${cpu.length} cells)`;
  };
  const lines = [
    header,
    '',
    `Floor CPU per request over the sitting: ${MODES.map(spread).join(', ')}. Each ratio divides by the floor measured just before and just after that cell; each added latency subtracts the upstream's own probe, taken just before and just after that target's.`,
    '',
    '| target | CPU ms/req JSON / SSE (× floor) | req/s JSON / SSE | added latency, unloaded: JSON total / SSE first event | RSS idle → peak under load (3 s after ready; idle after the load; start-up peak) |',
    '|---|---|---|---|---|',
  ];
  for (const target of [...new Set(rows.map((r) => r.target))].filter((t) => t !== 'direct upstream' && t !== FLOOR_BRACKET)) {
    const json = rows.find((r) => r.target === target && r.mode === 'json');
    const sse = rows.find((r) => r.target === target && r.mode === 'sse');
    const cell = (row: Row | undefined, show: (row: Row) => string) => (row ? show(row) : '—');
    const cpu = (row: Row) => row.cpuMsPerRequest.toFixed(3);
    const ratio = (row: Row) => `${(row.cpuMsPerRequest / floorOf(row)).toFixed(1)}×`;
    const added = (row: Row) => {
      // Every row in this table has its upstream probes (only the upstream's own row has none).
      const ms = row.probeMs - (row.upstreamProbeMs ?? Number.NaN);
      return `${ms < 0 ? '−' : '+'}${Math.abs(ms).toFixed(2)} ms`;
    };
    const mem = memory.find((m) => m.target === target);
    lines.push(
      `| ${target} | ${cell(json, cpu)} / ${cell(sse, cpu)} (${cell(json, ratio)} / ${cell(sse, ratio)}) | ${cell(json, (r) => String(r.rps))} / ${cell(sse, (r) => String(r.rps))} | ${cell(json, added)} / ${cell(sse, added)} | ${mem ? memoryCell(mem) : '—'} |`,
    );
  }
  for (const [config, floorName] of Object.entries(REQUIRED_IO)) {
    const requiredIo = (mode: Mode) => rows.find((r) => r.target === floorName && r.mode === mode);
    const governed = rows.filter((r) => r.target.startsWith(`tollgate ${config}`) && requiredIo(r.mode));
    if (!governed.length) continue;
    // Both in units of their own minutes' floor, so that a drift between the two cells cancels.
    const ratios = governed.map((r) => `${r.mode} ${(r.cpuMsPerRequest / floorOf(r) / (requiredIo(r.mode)!.cpuMsPerRequest / floorOf(requiredIo(r.mode)!))).toFixed(1)}×`);
    lines.push('', `CPU per request of ${governed[0]!.target} over ${floorName}, each in units of its own bracketing floor: ${ratios.join(', ')}.`);
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const commit = commitOf();
  const loadBefore = loadavg();
  const upstream = await startServe('upstream');
  upstreamTarget = { name: 'direct upstream', ...upstream, model: 'gpt-test' };
  const baselines: Target[] = [
    upstreamTarget,
    { name: FLOOR, ...(await startServe('bare-node-http', upstream.url)), model: 'gpt-test' },
  ];
  if (BASELINES) {
    baselines.push({ name: 'bare undici', ...(await startServe('bare-undici', upstream.url)), model: 'gpt-test' });
    baselines.push({ name: 'bare http-proxy', ...(await startServe('bare-http-proxy', upstream.url)), model: 'gpt-test' });
  }
  let dropRequiredIoDatabase = async () => {};
  const requiredIoDataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-required-io-'));
  if (CONFIGS.includes('pglite-memory')) {
    baselines.push({ name: REQUIRED_IO['pglite-memory']!, ...(await startServe('required-io-embedded', upstream.url, requiredIoDataDir)), model: 'gpt-test' });
  }
  if (CONFIGS.includes('postgresql-redis')) {
    const database = await createBenchDatabase(PG_ADMIN_URL);
    dropRequiredIoDatabase = database.drop;
    baselines.push({ name: REQUIRED_IO['postgresql-redis']!, ...(await startServe('required-io', upstream.url, REDIS_URL, database.url)), model: 'gpt-test' });
  }
  const rows: Row[] = [];
  const memory: MemoryRow[] = [];
  const floorTarget = baselines.find((target) => target.name === FLOOR)!;
  // The floor right before a cell: the one just measured after the previous cell, if it was.
  let lastFloor: Row | null = null;
  const measureFloor = async (mode: Mode) => {
    const floor: Row = { ...(await measure(floorTarget, mode, BRACKET_SECONDS)), target: FLOOR_BRACKET };
    rows.push(floor);
    return (lastFloor = floor);
  };
  const measureBracketed = async (target: Target, mode: Mode) => {
    const before = lastFloor?.mode === mode ? lastFloor : await measureFloor(mode);
    const row = await measure(target, mode);
    lastFloor = null;
    const after = await measureFloor(mode);
    rows.push({ ...row, floorCpuMsPerRequest: (before.cpuMsPerRequest + after.cpuMsPerRequest) / 2 });
  };
  for (const target of baselines) {
    const idleMb = rssMegabytes(target.pid);
    resetPeakRss(target.pid);
    for (const mode of MODES) {
      if (target === floorTarget || target.name === 'direct upstream') rows.push(await measure(target, mode));
      else await measureBracketed(target, mode);
    }
    // A required-I/O floor's memory says nothing of a gateway's (PGlite's initdb grows its WASM memory for good).
    if (target.name !== 'direct upstream' && !isRequiredIoFloor(target)) memory.push({ target: target.name, idleMb, peakMb: peakRssMegabytes(target.pid) });
  }
  for (const floor of baselines.filter(isRequiredIoFloor)) {
    const child = children.find((candidate) => candidate.pid === floor.pid);
    if (child && child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve).kill('SIGTERM'));
  }
  rmSync(requiredIoDataDir, { recursive: true, force: true });
  await dropRequiredIoDatabase();
  const spend: Record<string, number> = {};
  for (const config of CONFIGS) {
    const run = await startTollgate(config, upstream.url);
    // Warm-up (JIT, tokenizer, first customers) so the first measured cell is not penalised.
    await measure(run.target, MODES[0]!);
    lastFloor = null; // measured before this gateway started: not adjacent to its cells
    for (const mode of MODES) await measureBracketed(run.target, mode);
    memory.push(await run.memory());
    const customers = (await (await fetch(`${run.target.url}/customer/list?page_size=1000`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { user_id: string; spend: number }[];
    spend[config] = customers.filter((c) => c.user_id.startsWith('bench-customer-')).reduce((sum, c) => sum + c.spend, 0);
    await run.stop();
  }
  const loadAfter = loadavg();

  const header = `Tollgate benchmark, commit ${commit}, ${new Date().toISOString()}: ${CONNECTIONS} connections, ${SECONDS} s a cell, ${SEED_CUSTOMERS} customers seeded, ${cpus().length} cores, load average ${loadBefore[0]!.toFixed(2)} before / ${loadAfter[0]!.toFixed(2)} after${NODE_FLAGS.length ? `, Tollgate run with ${NODE_FLAGS.join(' ')}` : ''}`;
  console.log(`\n${header}`);
  console.table(rows.map((r) => ({ target: r.target, mode: r.mode, 'req/s': r.rps, 'p50 ms': r.p50, 'p99 ms': r.p99, 'CPU ms/req': round(r.cpuMsPerRequest), 'floor ms/req': r.floorCpuMsPerRequest && round(r.floorCpuMsPerRequest), 'probe ms': round(r.probeMs, 2), 'upstream probe ms': r.upstreamProbeMs && round(r.upstreamProbeMs, 2), 'drain s': round(r.drainMs / 1000, 1), errors: r.errors, non2xx: r.non2xx })));
  console.table(memory.map((m) => ({ target: m.target, 'start MB': m.startMb && Math.round(m.startMb), 'idle MB': Math.round(m.idleMb), 'peak MB': Math.round(m.peakMb), 'start-up peak MB': m.startupPeakMb && Math.round(m.startupPeakMb), 'idle after load MB': m.afterLoadMb && Math.round(m.afterLoadMb) })));
  const report = markdownReport(rows, memory, header);
  console.log(report);
  console.log(`spend metered by Tollgate: ${JSON.stringify(spend)}`);

  const folder = join(__dirname, '../../bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}-${commit}`);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'results.json'), JSON.stringify({ commit, date: new Date().toISOString(), seconds: SECONDS, connections: CONNECTIONS, seededCustomers: SEED_CUSTOMERS, cores: cpus().length, loadBefore, loadAfter, nodeFlags: NODE_FLAGS, rows, memory, spend }, null, 2));
  writeFileSync(join(folder, 'results.md'), report);
  console.log(`results written to ${folder}`);
  for (const child of children) child.kill('SIGTERM');
}

main().catch((error) => {
  console.error(error);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
