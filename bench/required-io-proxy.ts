/**
 * @module A second floor: the cheapest proxy that does the I/O a governed request needs, and
 * none of the governance. Per request it reads the customer from the JSON body, reserves on
 * admission and charges and releases on settlement (one Redis script each; in memory on the
 * embedded store), forwards on a keep-alive agent, reads the usage from the answer (asking a
 * stream for it), POSTs one `spend_tracked` event to the webhook receiver, and appends a
 * ledger row, written in one multi-row INSERT every 200 ms to PostgreSQL or to an embedded
 * PGlite with Tollgate's settings. No auth, no prices, no limits checked, no crash journal, no
 * webhook outbox (a lost POST is lost), no live events, no metrics.
 *
 * What this costs above the `node:http` pipe is what any gateway with these features pays in
 * Node on this machine, however lean its logic: the floor under Tollgate's own floor.
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import { embeddedStartParams } from '../src/store/embedded-settings';

/** Reserve on admission; on settlement charge the cost and release the reservation. */
const ADMIT = `return redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[1])`;
const SETTLE = `redis.call('HINCRBY', KEYS[1], 'reserved', -ARGV[1]) return redis.call('HINCRBY', KEYS[1], 'spend', ARGV[2])`;
const RESERVE_TOKENS = 4096;
const FLUSH_MS = 200;

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** Usage from a JSON answer, or from the last SSE event that carries it. */
function usageOf(text: string, stream: boolean): { prompt_tokens: number; completion_tokens: number } | undefined {
  if (!stream) return (JSON.parse(text) as { usage?: { prompt_tokens: number; completion_tokens: number } }).usage;
  const at = text.lastIndexOf('data: {', text.lastIndexOf('"usage"'));
  return at < 0 ? undefined : (JSON.parse(text.slice(at + 6, text.indexOf('\n', at))) as { usage?: { prompt_tokens: number; completion_tokens: number } }).usage;
}

interface LedgerRow {
  customer: string;
  prompt: number;
  completion: number;
}

/** Where the counters and the ledger live: PostgreSQL + Redis, or embedded (PGlite + memory). */
interface Stores {
  admit(key: string, tokens: number): Promise<unknown>;
  settle(key: string, tokens: number, spent: number): Promise<unknown>;
  insertLedger(rows: LedgerRow[]): Promise<unknown>;
}

const LEDGER_TABLE = 'create table if not exists bench_ledger (customer text not null, prompt_tokens int not null, completion_tokens int not null, at timestamptz not null default now())';
const INSERT_LEDGER = 'insert into bench_ledger (customer, prompt_tokens, completion_tokens) select * from unnest($1::text[], $2::int[], $3::int[])';
const ledgerParams = (rows: LedgerRow[]) => [rows.map((r) => r.customer), rows.map((r) => r.prompt), rows.map((r) => r.completion)];

async function postgresqlAndRedis(redisUrl: string, databaseUrl: string): Promise<Stores> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  redis.defineCommand('admit', { numberOfKeys: 1, lua: ADMIT });
  redis.defineCommand('settle', { numberOfKeys: 1, lua: SETTLE });
  const scripted = redis as Redis & { admit(key: string, tokens: number): Promise<number>; settle(key: string, tokens: number, spent: number): Promise<number> };
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  await pool.query(LEDGER_TABLE);
  return { admit: (key, tokens) => scripted.admit(key, tokens), settle: (key, tokens, spent) => scripted.settle(key, tokens, spent), insertLedger: (rows) => pool.query(INSERT_LEDGER, ledgerParams(rows)) };
}

async function embedded(dataDir: string): Promise<Stores> {
  const db = await PGlite.create({ dataDir, startParams: embeddedStartParams(PGlite.defaultStartParams) });
  await db.query(LEDGER_TABLE);
  const counters = new Map<string, { reserved: number; spend: number }>();
  const counter = (key: string) => counters.get(key) ?? counters.set(key, { reserved: 0, spend: 0 }).get(key)!;
  return {
    admit: async (key, tokens) => (counter(key).reserved += tokens),
    settle: async (key, tokens, spent) => {
      const c = counter(key);
      c.reserved -= tokens;
      return (c.spend += spent);
    },
    insertLedger: (rows) => db.query(INSERT_LEDGER, ledgerParams(rows)),
  };
}

export type RequiredIoStore = { kind: 'postgresql-redis'; redisUrl: string; databaseUrl: string } | { kind: 'embedded'; dataDir: string };

export async function startRequiredIoProxy(upstream: string, store: RequiredIoStore): Promise<{ url: string; server: Server }> {
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const stores = store.kind === 'embedded' ? await embedded(store.dataDir) : await postgresqlAndRedis(store.redisUrl, store.databaseUrl);
  let pending: LedgerRow[] = [];
  setInterval(() => {
    if (!pending.length) return;
    const rows = pending;
    pending = [];
    void stores.insertLedger(rows);
  }, FLUSH_MS).unref();

  /** POSTs `body`; each chunk of the answer goes to `onChunk` as it comes (a stream is relayed, not held). */
  const post = (path: string, body: string, onStart: (status: number) => void = () => {}, onChunk: (chunk: Buffer) => void = () => {}): Promise<string> =>
    new Promise((resolve, reject) => {
      const outgoing = httpRequest({ host: target.hostname, port: target.port, method: 'POST', path, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (answer) => {
        onStart(answer.statusCode ?? 502);
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          onChunk(chunk);
        });
        answer.on('end', () => resolve(Buffer.concat(chunks).toString()));
        answer.on('error', reject);
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  const server = createServer(async (request, response) => {
    try {
      const body = JSON.parse((await readBody(request)).toString()) as { user?: string; stream?: boolean; stream_options?: object };
      const customer = body.user ?? 'anonymous';
      const key = `bench:required-io:${customer}`;
      await stores.admit(key, RESERVE_TOKENS);
      if (body.stream) body.stream_options = { include_usage: true };
      const text = await post(
        request.url!,
        JSON.stringify(body),
        (status) => response.writeHead(status, { 'content-type': body.stream ? 'text/event-stream' : 'application/json' }),
        (chunk) => response.write(chunk),
      );
      response.end();
      const usage = usageOf(text, body.stream === true) ?? { prompt_tokens: 0, completion_tokens: 0 };
      await stores.settle(key, RESERVE_TOKENS, usage.prompt_tokens + usage.completion_tokens);
      pending.push({ customer, prompt: usage.prompt_tokens, completion: usage.completion_tokens });
      await post('/webhook', JSON.stringify({ event: 'spend_tracked', customer, usage, at: new Date().toISOString() }));
    } catch {
      if (!response.headersSent) response.writeHead(502);
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
