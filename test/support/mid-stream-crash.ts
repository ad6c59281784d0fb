/**
 * The mid-stream crash suite, run by one test file per counter store (each under a minute).
 * A gateway process killed with SIGKILL in the middle of a stream: the restart on the same
 * data dir charges what the client had received (`partial`, `estimated`, once), and the
 * customer's headroom the stream had reserved is back at once, without waiting for the
 * Redis lease (15 minutes here). A stream that had settled before the kill is not charged
 * again. Real processes, a real upstream that streams slowly, memory and Redis counters.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, MASTER_KEY, spawnGateway, testConfigYaml, TEST_INPUT_PRICE, TEST_OUTPUT_PRICE, type SpawnedGateway } from './gateway';
import { eventually } from './ledger';
import { MockUpstream } from './mock-upstream';
import { createTestDatabase, type TestDatabase } from './postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './redis';
import { countChatPromptTokensExact, countTextTokens } from '../../src/pricing/tokens';
import { dollarsToPico } from '../../src/shared/money';

const MESSAGES = [{ role: 'user', content: 'tell me a long story' }];
/** Reserves $0.002 of output: more than the whole $0.001 budget, so it holds all the headroom. */
const MAX_TOKENS = 1000;
const cost = (prompt: number, completion: number) => BigInt(prompt) * dollarsToPico(TEST_INPUT_PRICE) + BigInt(completion) * dollarsToPico(TEST_OUTPUT_PRICE);

interface SpendLog {
  request_id: string;
  spend: number;
  status: string;
  cost_source: string;
  prompt_tokens: number;
  completion_tokens: number;
}

async function spendLogs(base: string, user: string): Promise<SpendLog[]> {
  return (await api<SpendLog[]>(base, 'GET', `/spend/logs?end_user=${user}&limit=100`)).body;
}

async function spendOf(base: string, user: string): Promise<bigint> {
  const info = await api<{ spend: number }>(base, 'GET', `/customer/info?end_user_id=${user}`);
  expect(info.status, JSON.stringify(info.body)).toBe(200);
  expect(info.body.spend, JSON.stringify(info.body)).toBeTypeOf('number');
  return dollarsToPico(info.body.spend);
}

function chat(base: string, user: string, stream: boolean): Promise<Response> {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'upstream-gpt', user, stream, max_tokens: MAX_TOKENS, messages: MESSAGES }),
  });
}

const readers = new WeakMap<Response, ReadableStreamDefaultReader<Uint8Array>>();

/** Reads the rest of a stream that `readContent` started reading. */
async function readRest(response: Response): Promise<string> {
  const reader = readers.get(response)!;
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}

/** Reads the stream until `pieces` content deltas arrived; returns the text delivered. */
async function readContent(response: Response, pieces: number): Promise<string> {
  const reader = response.body!.getReader();
  readers.set(response, reader);
  const decoder = new TextDecoder();
  let buffer = '';
  let text = '';
  let seen = 0;
  while (seen < pieces) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended after ${seen} pieces`);
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const content = (JSON.parse(event.slice(6)) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content;
      if (content) {
        text += content;
        seen++;
      }
    }
  }
  return text;
}

/** The in-flight journal entries the gateway wrote under its data dir (what a restart reads). */
function journaledInFlight(dataDir: string): { requestId: string; delivered: { completionTokens: number } | null }[] {
  const directory = join(dataDir, 'journal');
  return readdirSync(directory)
    .filter((name) => /^in-flight-.*\.json$/.test(name))
    .flatMap((name) => {
      try {
        return JSON.parse(readFileSync(join(directory, name), 'utf8')) as { requestId: string; delivered: { completionTokens: number } | null }[];
      } catch {
        return [];
      }
    });
}

export function describeMidStreamCrash(counters: 'memory' | 'redis'): void {
  describe(`kill -9 mid-stream, ${counters} counters`, () => {
    let upstream: MockUpstream;
    let database: TestDatabase | null = null;
    let gateway: SpawnedGateway | null = null;
    const prefix = freshRedisPrefix();
    // Redis: on PostgreSQL (the data dir keeps only the journals); memory: PGlite in the data dir.
    const env = (): Record<string, string> => (counters === 'redis' ? { DATABASE_URL: database!.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } : {});

    beforeAll(async () => {
      upstream = await new MockUpstream().start();
      if (counters === 'redis') database = await createTestDatabase();
    });
    afterEach(async () => {
      await gateway?.stop();
      gateway = null;
      upstream.reset();
    });
    afterAll(async () => {
      await upstream.stop();
      await database?.drop();
      if (counters === 'redis') await deleteRedisKeys(prefix);
    });

    const yaml = (intervalMs: number) => testConfigYaml({ upstreamBase: upstream.baseUrl, extra: `tollgate:\n  in_flight_journal_interval_ms: ${intervalMs}\n` });

    async function customerWithSmallBudget(base: string, user: string): Promise<void> {
      expect((await api(base, 'POST', '/customer/new', { user_id: user, max_budget: 0.001 })).status).toBe(200);
    }

    it('charges the prompt and the tokens delivered, once, and gives the headroom back at restart', async () => {
      const dataDir = freshDataDir();
      const user = `killed-${counters}`;
      gateway = await spawnGateway({ yaml: yaml(50), dataDir, env: env() });
      await customerWithSmallBudget(gateway.url, user);
      upstream.behavior.pauseAfterChunks = 3; // "Hello from the", then silence until resumed

      const streaming = await chat(gateway.url, user, true);
      expect(streaming.status).toBe(200);
      const delivered = await readContent(streaming, 3);
      expect(delivered).toBe('Hello from the');
      // The stream's reservation holds the whole budget: nothing else is admitted meanwhile.
      expect((await chat(gateway.url, user, false)).status).toBe(402);
      // The journal has caught up with what reached the client (it is written every 50 ms).
      const requestId = streaming.headers.get('x-request-id')!;
      const expectedTokens = countTextTokens(delivered);
      await eventually(
        () => journaledInFlight(dataDir).find((entry) => entry.requestId === requestId)?.delivered?.completionTokens,
        (tokens) => tokens === expectedTokens,
      );
      await gateway.kill9();
      await readers.get(streaming)!.cancel().catch(() => undefined);

      gateway = await spawnGateway({ yaml: yaml(50), dataDir, env: env() });
      expect(gateway.output()).toContain('settled the requests a killed process left in flight');
      const rows = await spendLogs(gateway.url, user);
      expect(rows).toHaveLength(1);
      const promptTokens = await countChatPromptTokensExact(MESSAGES);
      expect(rows[0]).toMatchObject({ request_id: requestId, status: 'partial', cost_source: 'estimated', prompt_tokens: promptTokens, completion_tokens: expectedTokens });
      const charged = cost(promptTokens, expectedTokens);
      expect(dollarsToPico(rows[0]!.spend)).toBe(charged);
      expect(await spendOf(gateway.url, user)).toBe(charged);

      // The headroom is back now, not after the 15-minute lease.
      upstream.behavior.pauseAfterChunks = undefined;
      const next = await chat(gateway.url, user, false);
      expect(next.status).toBe(200);
      await next.text();
      const nextCost = cost(Math.ceil(MESSAGES[0]!.content.length / 4), upstream.behavior.reply.split(' ').length);
      expect(await spendOf(gateway.url, user)).toBe(charged + nextCost);

      // Another crash and restart does not charge the interrupted stream again.
      await gateway.kill9();
      gateway = await spawnGateway({ yaml: yaml(50), dataDir, env: env() });
      expect((await spendLogs(gateway.url, user)).filter((row) => row.request_id === requestId)).toHaveLength(1);
      expect(await spendOf(gateway.url, user)).toBe(charged + nextCost);
    });

    it('does not charge a stream again that settled after its last journal snapshot', async () => {
      const dataDir = freshDataDir();
      const user = `settled-${counters}`;
      // Snapshots 3 s apart: the stream settles between the first one and the next.
      gateway = await spawnGateway({ yaml: yaml(3000), dataDir, env: env() });
      await customerWithSmallBudget(gateway.url, user);
      upstream.behavior.pauseAfterChunks = 3;
      const streaming = await chat(gateway.url, user, true);
      const requestId = streaming.headers.get('x-request-id')!;
      await readContent(streaming, 3);
      await eventually(
        () => journaledInFlight(dataDir).find((entry) => entry.requestId === requestId)?.delivered?.completionTokens,
        (tokens) => (tokens ?? 0) > 0,
      );
      upstream.resume();
      expect(await readRest(streaming)).toContain('data: [DONE]');
      // Settled, and its snapshot is still on disk when the process dies.
      expect(journaledInFlight(dataDir).some((entry) => entry.requestId === requestId)).toBe(true);
      await gateway.kill9();

      gateway = await spawnGateway({ yaml: yaml(3000), dataDir, env: env() });
      const rows = await spendLogs(gateway.url, user);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ request_id: requestId, status: 'success' });
      expect(await spendOf(gateway.url, user)).toBe(dollarsToPico(rows[0]!.spend));
      // Its settlement ended its reservation: the headroom is free.
      const next = await chat(gateway.url, user, false);
      expect(next.status).toBe(200);
      await next.text();
    });
  });
}
