/**
 * Money survives crashes: Tollgate runs as a real process, serves a stream of concurrent
 * requests and is killed with SIGKILL mid-load. After a restart on the same store, every
 * response the client received completely is in the ledger exactly once, and every
 * customer's spend equals the sum of its ledger rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDataDir, MASTER_KEY, spawnGateway, testConfigYaml, TEST_INPUT_PRICE, TEST_OUTPUT_PRICE, type SpawnedGateway } from './support/gateway';
import { MockUpstream } from './support/mock-upstream';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { dollarsToPico } from '../src/shared/money';

// The ledger flushes only at shutdown here, so everything the kill leaves behind must come
// back from the crash journal: the test exercises recovery, not a lucky flush.
const YAML = testConfigYaml({
  extra: 'tollgate:\n  ledger_flush_interval_ms: 600000\n',
  models: `
  - model_name: slowish
    litellm_params:
      model: mock/gpt-3.5-turbo
      mock_latency_ms: 30`,
});

async function oneRequest(base: string, user: string, stream: boolean): Promise<string | null> {
  try {
    const response = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'slowish', user, stream, messages: [{ role: 'user', content: `hello ${user}` }] }),
    });
    const text = await response.text(); // throws if the connection dies mid-body
    if (response.status !== 200) return null;
    if (stream && !text.includes('data: [DONE]')) return null;
    return response.headers.get('x-request-id');
  } catch {
    return null; // not received completely: may or may not be charged (estimated), never twice
  }
}

describe.each(['postgresql', 'pglite'] as const)('crash safety on %s', (store) => {
  let database: TestDatabase | null = null;
  let gateway: SpawnedGateway | null = null;
  const dataDir = freshDataDir();

  beforeAll(async () => {
    if (store === 'postgresql') database = await createTestDatabase();
  });
  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
  });

  it('keeps every completed response in the ledger after kill -9, none twice', async () => {
    const env = database ? { DATABASE_URL: database.url } : undefined;
    gateway = await spawnGateway({ yaml: YAML, dataDir, env });
    const base = gateway.url;
    const completed: string[] = [];
    let stop = false;
    const workers = Array.from({ length: 12 }, async (_, worker) => {
      for (let i = 0; !stop && i < 1000; i++) {
        const id = await oneRequest(base, `crash-${worker % 4}`, i % 3 === 0);
        if (id) completed.push(id);
      }
    });
    while (completed.length < 120) await new Promise((resolve) => setTimeout(resolve, 20));
    await gateway.kill9();
    stop = true;
    await Promise.all(workers);
    const completedBeforeKill = [...completed];

    gateway = await spawnGateway({ yaml: YAML, dataDir, env });
    expect(gateway.output()).toContain('recovered metered requests from the crash journal');
    // Read through the restarted gateway's own store.
    const logs: { request_id: string; end_user: string; spend: number }[] = [];
    let cursor: string | null = null;
    do {
      const response: Response = await fetch(`${gateway.url}/spend/logs?limit=1000${cursor ? `&after=${cursor}` : ''}`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
      logs.push(...((await response.json()) as typeof logs));
      cursor = response.headers.get('x-next-cursor');
    } while (cursor);
    const ids = logs.map((row) => row.request_id);
    expect(new Set(ids).size).toBe(ids.length); // nothing charged twice
    const missing = completedBeforeKill.filter((id) => !ids.includes(id));
    expect(missing).toEqual([]);
    expect(completedBeforeKill.length).toBeGreaterThanOrEqual(120);

    for (let worker = 0; worker < 4; worker++) {
      const user = `crash-${worker}`;
      const ledgerSum = logs.filter((row) => row.end_user === user).reduce((sum, row) => sum + dollarsToPico(row.spend), 0n);
      const info = (await (await fetch(`${gateway.url}/customer/info?end_user_id=${user}`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })).json()) as { spend: number };
      expect(dollarsToPico(info.spend)).toBe(ledgerSum);
    }
    if (database) {
      const rows = await queryDatabase<{ customer_id: string; counter: string; ledger: string }>(
        database.url,
        `select c.customer_id, c.spend_pico::text as counter, (select sum(cost_pico) from spend_ledger l where l.customer_id = c.customer_id)::text as ledger
         from spend_counters c where c.scope = ''`,
      );
      for (const row of rows) expect(row.counter).toBe(row.ledger);
    }
  });
});

describe('graceful stop', () => {
  it('drains in-flight requests on SIGTERM, flushes the ledger, and a restart shows the same spend', async () => {
    const dataDir = freshDataDir();
    const upstream = await new MockUpstream().start();
    upstream.behavior.chunkDelayMs = 100; // each stream takes ~1.5 s after its headers
    const yaml = testConfigYaml({ upstreamBase: upstream.baseUrl, extra: 'tollgate:\n  ledger_flush_interval_ms: 600000\n' });
    let gateway = await spawnGateway({ yaml, dataDir });
    try {
      const responses = await Promise.all(
        Array.from({ length: 5 }, () =>
          fetch(`${gateway.url}/chat/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
            body: JSON.stringify({ model: 'upstream-gpt', user: 'draining', stream: true, messages: [{ role: 'user', content: 'take your time' }] }),
          }),
        ),
      );
      // All five are in flight (headers received, bodies streaming) when SIGTERM arrives.
      const stopped = gateway.stop();
      const bodies = await Promise.all(responses.map((response) => response.text()));
      expect(await stopped).toBe(0);
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      for (const body of bodies) expect(body).toContain('data: [DONE]');
      const words = upstream.behavior.reply.split(' ').length;
      const expected = 5n * (BigInt(Math.ceil('take your time'.length / 4)) * dollarsToPico(TEST_INPUT_PRICE) + BigInt(words) * dollarsToPico(TEST_OUTPUT_PRICE));
      gateway = await spawnGateway({ yaml, dataDir });
      expect(gateway.output()).not.toContain('recovered metered requests'); // flushed at stop, nothing to replay
      const info = (await (await fetch(`${gateway.url}/customer/info?end_user_id=draining`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })).json()) as { spend: number };
      expect(dollarsToPico(info.spend)).toBe(expected);
    } finally {
      await gateway.stop();
      await upstream.stop();
    }
  });
});
