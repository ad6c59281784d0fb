/**
 * `node dist/bench/customer-memory.js`: how a gateway's memory grows with the customers it
 * serves (issue #11: "state how it grows per customer"). Stored customers cost a process
 * nothing (none is read at start); a served one is held in the customer cache, and with
 * in-process counters in the spend book and, while it has requests in the last minute, in a
 * rate window. For each configuration this serves CUSTOMERS new customers (20 at a time, a
 * default budget with dollar, rpm and tpm limits on each), and reads the live heap after a
 * full collection (the gateway runs with `--expose-gc` and a preload that collects and prints
 * on SIGUSR2): once warm, after the new customers, and after a minute without them (their
 * rate windows expired and swept by a few thousand requests of other customers).
 * Options (env): BENCH_CUSTOMERS (20000), BENCH_CONFIGS, BENCH_PG_ADMIN_URL, BENCH_REDIS_URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RATE_WINDOW_MS } from '../src/shared-state/types';
import { BENCH_KEY, BENCH_MODEL, createBenchBudget, prepareGateway, TOLLGATE_BIN } from './gateway-setup';
import { startBenchUpstream } from './upstream';

const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 20_000);
const CONFIGS = (process.env.BENCH_CONFIGS ?? 'pglite-memory,postgresql-redis').split(',');
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Collects twice (what the first frees may hold more) and prints the live heap. */
const GC_PRELOAD = `process.on('SIGUSR2', () => { global.gc(); global.gc(); process.stderr.write('LIVE_HEAP ' + process.memoryUsage().heapUsed + '\\n'); });`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Gateway {
  child: ChildProcess;
  liveHeapBytes(): Promise<number>;
  serve(prefix: string, from: number, to: number): Promise<void>;
  stop(): Promise<void>;
}

async function startGateway(config: string, upstream: string, preload: string): Promise<Gateway> {
  const { configPath, env, remove } = await prepareGateway(config, { upstream, webhooks: false, redisPrefix: 'tollgate:customer-memory:', pgAdminUrl: PG_ADMIN_URL, redisUrl: REDIS_URL });
  const child = spawn(process.execPath, ['--expose-gc', '-r', preload, TOLLGATE_BIN, 'start', '--config', configPath, '--port', '0', '--host', '127.0.0.1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let heapWaiter: ((bytes: number) => void) | null = null;
  child.stderr!.on('data', (chunk: Buffer) => {
    const match = /LIVE_HEAP (\d+)/.exec(chunk.toString());
    if (match && heapWaiter) heapWaiter(Number(match[1]));
  });
  const port = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"port":(\d+).*"msg":"Tollgate is ready"/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${output.slice(-2000)}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  await createBenchBudget(base);
  const agent = new Agent({ keepAlive: true, maxSockets: 20 });
  const url = new URL(`${base}/v1/chat/completions`);
  const once = (user: string) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({ model: BENCH_MODEL, user, max_tokens: 64, messages: [{ role: 'user', content: 'Say something about foxes.' }] });
      const outgoing = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${BENCH_KEY}` } }, (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${response.statusCode} for ${user}`))));
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  return {
    child,
    liveHeapBytes: async () => {
      await sleep(1500); // the ledger's batch of what was just served is committed
      const bytes = new Promise<number>((resolve) => (heapWaiter = resolve));
      child.kill('SIGUSR2');
      return bytes;
    },
    serve: async (prefix, from, to) => {
      let next = from;
      await Promise.all(Array.from({ length: 20 }, async () => {
        while (next < to) await once(`${prefix}-${next++}`);
      }));
    },
    stop: async () => {
      agent.destroy();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await remove();
    },
  };
}

async function main(): Promise<void> {
  const upstream = await startBenchUpstream();
  const preload = join(mkdtempSync(join(tmpdir(), 'tollgate-gc-preload-')), 'gc.cjs');
  writeFileSync(preload, GC_PRELOAD);
  const warm = 2_000;
  for (const config of CONFIGS) {
    const gateway = await startGateway(config, upstream.url, preload);
    try {
      // Warm-up: JIT, caches, the first customers and their code paths.
      await gateway.serve('warm', 0, warm);
      await gateway.serve('warm', 0, warm);
      const warmHeap = await gateway.liveHeapBytes();
      await gateway.serve('customer', 0, CUSTOMERS);
      const servedHeap = await gateway.liveHeapBytes();
      // A minute later, and after enough requests of other customers to sweep their windows.
      await sleep(RATE_WINDOW_MS + 1_000);
      for (let round = 0; round < Math.ceil(CUSTOMERS / warm / 4) + 1; round++) await gateway.serve('warm', 0, warm);
      const laterHeap = await gateway.liveHeapBytes();
      const perCustomer = (heap: number) => Math.round((heap - warmHeap) / CUSTOMERS);
      console.log(
        `${config}: live heap ${(warmHeap / 1e6).toFixed(1)} MB warm (${warm} customers); +${CUSTOMERS} customers: ${(servedHeap / 1e6).toFixed(1)} MB, ${perCustomer(servedHeap)} bytes each; a minute later: ${(laterHeap / 1e6).toFixed(1)} MB, ${perCustomer(laterHeap)} bytes each`,
      );
    } finally {
      await gateway.stop();
    }
  }
  upstream.server.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
