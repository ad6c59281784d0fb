/**
 * One huge request must not stall the others: 9 MB bodies of many short messages go through
 * a real gateway process (chat with and without provider usage, so both the admission
 * estimate and the exact count for billing run; an Anthropic Messages body on a translated
 * deployment; a 3 MB answer without usage) while small requests keep being sent on the side.
 * The slowest small request during the huge one is compared with the slowest of as many small
 * requests sent right after it, on their own: what the huge request adds is the stall. The
 * money is checked to the pico-dollar, and bad or too-big huge bodies get their 4xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { countTokens } from 'gpt-tokenizer';
import { AnthropicUpstream, anthropicInputTokensOf } from './support/anthropic-upstream';
import { FakeUpstreamServer } from './support/fake-upstream';
import { api, freshDataDir, spawnGateway, testConfigYaml, TEST_INPUT_PRICE, TEST_OUTPUT_PRICE, type SpawnedGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { dollarsToPico, picoToDecimalString } from '../src/shared/money';

const REPLY = 'ok then';

/** Answers at once without parsing the request (only the gateway's work is measured); keeps the last body it got. */
class QuickUpstream extends FakeUpstreamServer {
  withUsage = true;
  /** Characters of filler in the answer's content (a big answer). */
  answerChars = 0;
  lastBody: Buffer | null = null;

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get content(): string {
    return this.answerChars ? `${REPLY} ${'lorem ipsum dolor '.repeat(Math.ceil(this.answerChars / 18))}` : REPLY;
  }

  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    this.lastBody = Buffer.concat(chunks);
    const usage = this.withUsage ? { usage: { prompt_tokens: 900_000, completion_tokens: 2, total_tokens: 900_002 } } : {};
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 0, model: 'gpt-test', choices: [{ index: 0, message: { role: 'assistant', content: this.content }, finish_reason: 'stop' }], ...usage }));
  }
}

const PROBE = pathToFileURL(join(__dirname, 'support/loop-probe.mjs')).href;
const probeFile = join(mkdtempSync(join(tmpdir(), 'tollgate-probe-')), 'turns.txt');

/** The most CPU the gateway's main thread spent in one event-loop turn between two instants. */
function longestTurnMs(from: number, to: number): number {
  const lines = existsSync(probeFile) ? readFileSync(probeFile, 'utf8').trim().split('\n') : [];
  let longest = 0;
  for (const line of lines) {
    const [at, ran] = line.split(' ').map(Number) as [number, number];
    if (at >= from && at <= to + 50) longest = Math.max(longest, ran);
  }
  return longest;
}

const upstream = new QuickUpstream();
const anthropic = new AnthropicUpstream();
let gateway: SpawnedGateway;
let database: TestDatabase;
const INPUT = dollarsToPico(TEST_INPUT_PRICE);
const OUTPUT = dollarsToPico(TEST_OUTPUT_PRICE);

beforeAll(async () => {
  await upstream.start();
  await anthropic.start();
  database = await createTestDatabase();
  const claude = `
  - model_name: huge-claude
    litellm_params:
      model: anthropic/claude-test
      api_base: ${anthropic.baseUrl}
      api_key: sk-ant-test
      input_cost_per_token: 0.000003
      output_cost_per_token: 0.000015`;
  gateway = await spawnGateway({ yaml: testConfigYaml({ upstreamBase: upstream.base, models: claude }), dataDir: freshDataDir(), env: { DATABASE_URL: database.url, NODE_OPTIONS: `--import ${PROBE}`, TOLLGATE_TEST_LOOP_PROBE: probeFile } });
  // undici compiles its HTTP parser on its first upstream connection: a one-time cost of any first request, not of a big one.
  const warm = await api(gateway.url, 'POST', '/chat/completions', { model: 'upstream-gpt', messages: [{ role: 'user', content: 'warm up' }] });
  expect(warm.status).toBe(200);
});

afterAll(async () => {
  await gateway?.stop();
  await upstream.stop();
  await anthropic.stop();
  await database?.drop();
});

async function smallRequestMs(): Promise<number> {
  const started = performance.now();
  const response = await api(gateway.url, 'POST', '/chat/completions', { model: 'gpt-3.5-turbo', user: 'small', messages: [{ role: 'user', content: 'hi' }] });
  expect(response.status).toBe(200);
  return performance.now() - started;
}

function shortMessages(bytes: number): { role: string; content: string }[] {
  const messages: { role: string; content: string }[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const message = { role: i % 2 ? 'assistant' : 'user', content: `short message number ${i} hi` };
    messages.push(message);
    size += JSON.stringify(message).length + 1;
  }
  return messages;
}

const NINE_MB = 9 * 1024 * 1024;

function post(path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234', ...headers }, body });
}

/**
 * Sends the huge request while small ones run one after another, then as many small ones on
 * their own. Returns the huge request's response (read) and the stall it added.
 */
async function measure(send: () => Promise<Response>): Promise<{ response: Response; text: string; stallMs: number; during: number[] }> {
  for (let i = 0; i < 10; i++) await smallRequestMs(); // warm
  const started = Date.now();
  const during: number[] = [];
  let done = false;
  const smallRequests = (async () => {
    while (!done) during.push(await smallRequestMs());
  })();
  const response = await send();
  const text = await response.text();
  done = true;
  await smallRequests;
  const stallMs = longestTurnMs(started, Date.now());
  // Wall-clock figures, for the record: on a shared machine they mostly measure its load.
  const quiet: number[] = [];
  while (quiet.length < Math.min(during.length, 50)) quiet.push(await smallRequestMs());
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!.toFixed(0);
  console.log(
    `longest event-loop turn of the gateway during the huge request: ${stallMs.toFixed(0)} ms of CPU; small requests: ${during.length} during it (median ${median(during)} ms, slowest ${Math.max(...during).toFixed(0)} ms), ${quiet.length} after it (median ${median(quiet)} ms, slowest ${Math.max(...quiet).toFixed(0)} ms)`,
  );
  return { response, text, stallMs, during };
}

async function ledgerRow(requestId: string | null): Promise<{ cost_source: string; prompt_tokens: number; completion_tokens: number; cost_pico: string; endpoint: string }> {
  const rowOf = () => queryDatabase<{ cost_source: string; prompt_tokens: number; completion_tokens: number; cost_pico: string; endpoint: string }>(database.url, 'select cost_source, prompt_tokens, completion_tokens, cost_pico::text, endpoint from spend_ledger where request_id = $1', [requestId]);
  await expect.poll(async () => (await rowOf()).length).toBe(1);
  return (await rowOf())[0]!;
}

/** OpenAI's chat accounting, counted here with the tokenizer itself: 3 + per message 4 + its text. */
function chatPromptTokens(messages: { content: string }[]): number {
  return messages.reduce((sum, message) => sum + 4 + countTokens(message.content), 3);
}

describe('a 9 MB body', () => {
  for (const withUsage of [true, false]) {
    it(`chat: does not stall other requests, and is billed exactly (${withUsage ? 'provider usage' : 'no usage: counted exactly'})`, async () => {
      upstream.withUsage = withUsage;
      upstream.answerChars = 0;
      const messages = shortMessages(NINE_MB);
      const body = JSON.stringify({ model: 'upstream-gpt', user: 'huge', messages });
      const { response, text, stallMs, during } = await measure(() => post('/chat/completions', body));
      expect(response.status, text).toBe(200);
      expect(JSON.parse(text).choices[0].message.content).toBe(REPLY);
      expect(during.length).toBeGreaterThan(1);
      expect(stallMs).toBeLessThan(STALL_BOUND_MS);
      // The upstream got the client's body with the deployment's model: every message, in order.
      const sent = JSON.parse(upstream.lastBody!.toString('utf8')) as { model: string; user: string; messages: unknown[] };
      expect(sent.model).toBe('gpt-test');
      expect(sent.user).toBe('huge');
      expect(sent.messages).toEqual(messages);
      const row = await ledgerRow(response.headers.get('x-request-id'));
      expect(row.endpoint).toBe('chat');
      const prompt = withUsage ? 900_000 : chatPromptTokens(messages);
      const completion = withUsage ? 2 : countTokens(REPLY);
      expect(row.cost_source).toBe(withUsage ? 'provider' : 'computed');
      expect([row.prompt_tokens, row.completion_tokens]).toEqual([prompt, completion]);
      expect(BigInt(row.cost_pico)).toBe(BigInt(prompt) * INPUT + BigInt(completion) * OUTPUT);
      expect(response.headers.get('x-litellm-response-cost')).toBe(picoToDecimalString(BigInt(row.cost_pico)));
    }, HUGE_TEST_TIMEOUT_MS);
  }

  it('Messages on a deployment reached through chat: translated both ways without a stall, counted exactly', async () => {
    upstream.withUsage = false;
    upstream.answerChars = 0;
    const messages = shortMessages(NINE_MB);
    const body = JSON.stringify({ model: 'upstream-gpt', max_tokens: 100, system: 'be brief', metadata: { user_id: 'huge-messages' }, messages });
    const { response, text, stallMs } = await measure(() => post('/v1/messages', body, { 'anthropic-version': '2023-06-01' }));
    expect(response.status, text).toBe(200);
    const answer = JSON.parse(text) as { type: string; content: { type: string; text: string }[] };
    expect(answer.type).toBe('message');
    expect(answer.content[0]!.text).toBe(REPLY);
    expect(stallMs).toBeLessThan(STALL_BOUND_MS);
    const sent = JSON.parse(upstream.lastBody!.toString('utf8')) as { model: string; messages: { role: string; content: unknown }[] };
    expect(sent.model).toBe('gpt-test');
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'be brief' });
    expect(sent.messages.length).toBe(messages.length + 1);
    const row = await ledgerRow(response.headers.get('x-request-id'));
    expect(row.endpoint).toBe('messages');
    const prompt = chatPromptTokens([{ content: 'be brief' }, ...messages]);
    expect([row.cost_source, row.prompt_tokens, row.completion_tokens]).toEqual(['computed', prompt, countTokens(REPLY)]);
    expect(BigInt(row.cost_pico)).toBe(BigInt(prompt) * INPUT + BigInt(countTokens(REPLY)) * OUTPUT);
  }, HUGE_TEST_TIMEOUT_MS);

  it('chat on an anthropic/ deployment: converted in the worker, without a stall, billed on Anthropic\'s usage', async () => {
    const messages = shortMessages(NINE_MB);
    const { response, text, stallMs } = await measure(() => post('/chat/completions', JSON.stringify({ model: 'huge-claude', user: 'huge-claude', messages })));
    expect(response.status, text).toBe(200);
    expect((JSON.parse(text) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe(anthropic.behavior.reply);
    expect(stallMs).toBeLessThan(STALL_BOUND_MS);
    const sent = anthropic.requests.at(-1)!;
    expect(sent.path).toBe('/v1/messages');
    expect((sent.body.messages as unknown[]).length).toBe(messages.length);
    expect(sent.body.metadata).toEqual({ user_id: 'huge-claude' });
    const row = await ledgerRow(response.headers.get('x-request-id'));
    const input = anthropicInputTokensOf(sent.body);
    expect([row.cost_source, row.prompt_tokens]).toEqual(['provider', input]);
    expect(BigInt(row.cost_pico)).toBe(BigInt(input) * 3_000_000n + BigInt(row.completion_tokens) * 15_000_000n);
  }, HUGE_TEST_TIMEOUT_MS);

  it('with a 3 MB answer and no usage: the answer arrives whole, its tokens counted exactly', async () => {
    upstream.withUsage = false;
    upstream.answerChars = 3 * 1024 * 1024;
    const messages = shortMessages(NINE_MB);
    const { response, text, stallMs } = await measure(() => post('/chat/completions', JSON.stringify({ model: 'upstream-gpt', messages })));
    expect(response.status).toBe(200);
    const content = (JSON.parse(text) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    expect(content).toBe(upstream.content);
    expect(stallMs).toBeLessThan(STALL_BOUND_MS);
    const row = await ledgerRow(response.headers.get('x-request-id'));
    expect([row.cost_source, row.prompt_tokens, row.completion_tokens]).toEqual(['computed', chatPromptTokens(messages), countTokens(content)]);
  }, HUGE_TEST_TIMEOUT_MS);

  it('that is not JSON, nests too deep or is too big gets a 400 / 413 naming the problem; nothing is charged', async () => {
    const valid = JSON.stringify({ model: 'upstream-gpt', messages: shortMessages(NINE_MB) });
    const cut = await post('/chat/completions', valid.slice(0, -3));
    expect(cut.status).toBe(400);
    expect(((await cut.json()) as { error: { message: string } }).error.message).toMatch(/^Request body is not valid JSON/);
    const deep = await post('/chat/completions', `{"model":"upstream-gpt","messages":[{"role":"user","content":"hi","x":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}]}`);
    expect(deep.status).toBe(400);
    expect(((await deep.json()) as { error: { message: string } }).error.message).toMatch(/JSON|nest/i);
    const notChat = await post('/chat/completions', JSON.stringify({ model: 'upstream-gpt', messages: [...shortMessages(1024 * 1024), 'not a message'] }));
    expect(notChat.status).toBe(400);
    expect(((await notChat.json()) as { error: { param: string } }).error.param).toMatch(/^messages\[\d+\]$/);
    const unknownModel = await post('/v1/messages', JSON.stringify({ model: 'nope', max_tokens: 5, messages: shortMessages(1024 * 1024) }), { 'anthropic-version': '2023-06-01' });
    expect(unknownModel.status).toBe(404);
    expect(((await unknownModel.json()) as { type: string; error: { type: string } }).error.type).toBe('not_found_error');
    const tooBig = await post('/chat/completions', JSON.stringify({ model: 'upstream-gpt', messages: shortMessages(11 * 1024 * 1024) }));
    expect(tooBig.status).toBe(413);
    // Still serving, and none of these reached the upstream's bill.
    expect(await smallRequestMs()).toBeLessThan(5_000);
    const rows = await queryDatabase<{ n: string }>(database.url, "select count(*)::text as n from spend_ledger where status <> 'success'", []);
    expect(rows[0]!.n).toBe('0');
  }, HUGE_TEST_TIMEOUT_MS);
});

/**
 * The most CPU the gateway's event loop may spend in one turn while a 9 MB request is served
 * (every other request waits that long). Measured as the main thread's own time on a core
 * (loop-probe.mjs), so a loaded CI's run-queue waits do not count, and a real stall cannot
 * hide in them. Parsing, validating, estimating and serialising the body, counting its ~1.4M
 * tokens and parsing a big answer all run in a low-priority worker thread now; the main
 * thread copies chunks as they arrive (a MB per turn at most). Before, one turn parsed and
 * re-serialised the whole body.
 */
const STALL_BOUND_MS = 50;

/** The body worker runs at a low priority: on a saturated machine a 9 MB request itself takes a while (the others do not). */
const HUGE_TEST_TIMEOUT_MS = 150_000;
