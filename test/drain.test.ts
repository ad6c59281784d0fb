/**
 * Graceful stop under load, as production runs it: a real `tollgate start` process serving
 * keep-alive clients (JSON and SSE, slow enough that streams are open) gets SIGTERM. No
 * request may be reset: each one is either answered in full (the ones sent during the drain
 * with `Connection: close`) or refused before it was sent (the listener is closed). Every
 * request charged in the ledger was delivered in full, and every one delivered is charged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { freshDataDir, MASTER_KEY, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';

const WORKERS = 16;
const LOAD_BEFORE_STOP_MS = 1_500;

let database: TestDatabase;
let gateway: SpawnedGateway;

beforeAll(async () => {
  database = await createTestDatabase();
  gateway = await spawnGateway({
    yaml: testConfigYaml({ models: '\n  - model_name: slow\n    litellm_params:\n      model: mock/gpt-3.5-turbo\n      mock_latency_ms: 250' }),
    dataDir: freshDataDir(),
    env: { DATABASE_URL: database.url, NODE_ENV: '' },
  });
});

afterAll(async () => {
  if (gateway.child.exitCode === null) await gateway.kill9();
  await database?.drop();
});

interface Outcome {
  kind: 'delivered' | 'refused' | 'failed';
  requestId?: string;
  afterStop: boolean;
  connectionClose?: boolean;
  detail?: string;
}

async function oneRequest(agent: Agent, user: string, stream: boolean, stopped: () => boolean): Promise<Outcome> {
  const afterStop = stopped();
  try {
    const response = await request(`${gateway.url}/chat/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'slow', user, stream, messages: [{ role: 'user', content: 'tell me a story about draining' }] }),
    });
    const text = await response.body.text();
    const requestId = String(response.headers['x-request-id']);
    const complete = response.statusCode === 200 && (stream ? text.trimEnd().endsWith('data: [DONE]') : Array.isArray((JSON.parse(text) as { choices?: unknown }).choices));
    if (!complete) return { kind: 'failed', requestId, afterStop, detail: `status ${response.statusCode}: ${text.slice(0, 200)}` };
    return { kind: 'delivered', requestId, afterStop, connectionClose: response.headers.connection === 'close' };
  } catch (error) {
    const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code;
    // Refused before anything was sent: the client knows the request never reached us.
    if (code === 'ECONNREFUSED') return { kind: 'refused', afterStop };
    return { kind: 'failed', afterStop, detail: `${code ?? ''} ${(error as Error).message}` };
  }
}

describe('graceful stop', () => {
  it('resets nothing under keep-alive load and open streams, and charges exactly what was delivered', async () => {
    const agent = new Agent({ connections: WORKERS, pipelining: 1, keepAliveTimeout: 30_000 });
    let stoppedAt = 0;
    const stopped = () => stoppedAt > 0;
    const outcomes: Outcome[] = [];
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
    let exitedYet = false;
    void exited.then(() => (exitedYet = true));
    const workers = Array.from({ length: WORKERS }, async (_, worker) => {
      for (let i = 0; ; i++) {
        const outcome = await oneRequest(agent, `drain-${worker}`, (worker + i) % 2 === 0, stopped);
        outcomes.push(outcome);
        if (outcome.kind !== 'delivered' || exitedYet) return;
      }
    });
    await new Promise((resolve) => setTimeout(resolve, LOAD_BEFORE_STOP_MS));
    stoppedAt = Date.now();
    gateway.child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 40_000))]);
    await Promise.all(workers);
    await agent.close();
    expect(code, gateway.output()).toBe(0);

    const failed = outcomes.filter((o) => o.kind === 'failed');
    expect(failed, JSON.stringify(failed.slice(0, 5))).toEqual([]);
    const delivered = outcomes.filter((o) => o.kind === 'delivered');
    expect(delivered.filter((o) => !o.afterStop).length).toBeGreaterThan(WORKERS); // a real load before the stop
    // Requests that were in flight or arrived during the drain were answered, telling the client to reconnect.
    expect(delivered.filter((o) => o.connectionClose).length).toBeGreaterThan(0);

    const rows = await queryDatabase<{ request_id: string; status: string }>(database.url, 'select request_id, status from spend_ledger');
    const charged = new Set(rows.map((row) => row.request_id));
    const deliveredIds = new Set(delivered.map((o) => o.requestId!));
    expect([...charged].filter((id) => !deliveredIds.has(id))).toEqual([]); // charged but not delivered
    expect([...deliveredIds].filter((id) => !charged.has(id))).toEqual([]); // delivered but not charged
    expect(rows.every((row) => row.status === 'success')).toBe(true);
  });
});
