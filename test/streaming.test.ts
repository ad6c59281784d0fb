/**
 * Streaming and upstream failures, end to end: the official OpenAI SDK against Tollgate
 * against a real HTTP upstream. Every way a request can end is billed exactly once, with the
 * right cost_source, and nothing is billed without tokens (SPEC §3).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { api, openaiClient, startTestGateway, testConfigYaml, TEST_INPUT_PRICE, TEST_OUTPUT_PRICE } from './support/gateway';
import { eventually, ledgerRows, waitForLedgerRows } from './support/ledger';
import { MockUpstream, promptTokensOf } from './support/mock-upstream';
import { countChatPromptTokensExact, countTextTokens } from '../src/pricing/tokens';
import { dollarsToPico } from '../src/shared/money';

const inputPico = dollarsToPico(TEST_INPUT_PRICE);
const outputPico = dollarsToPico(TEST_OUTPUT_PRICE);
const cost = (prompt: number, completion: number) => BigInt(prompt) * inputPico + BigInt(completion) * outputPico;

describe('streaming and upstream failures', () => {
  let upstream: MockUpstream;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let client: ReturnType<typeof openaiClient>;

  beforeAll(async () => {
    upstream = await new MockUpstream().start();
    const slow = `
  - model_name: slow-gpt
    litellm_params:
      model: openai/gpt-test
      api_base: ${upstream.baseUrl}
      api_key: sk-upstream
      timeout: 1
      input_cost_per_token: ${TEST_INPUT_PRICE}
      output_cost_per_token: ${TEST_OUTPUT_PRICE}`;
    gateway = await startTestGateway({ yaml: testConfigYaml({ upstreamBase: upstream.baseUrl, models: slow }) });
    client = openaiClient(`${gateway.url}/v1`);
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  beforeEach(() => upstream.reset());

  it('relays each chunk as it comes, bills provider usage exactly and leaks no usage chunk', async () => {
    upstream.behavior.pauseAfterChunks = 3;
    const messages = [{ role: 'user' as const, content: 'stream to me, chunk by chunk' }];
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'stream-exact', stream: true, messages });
    const contents: string[] = [];
    let usageChunks = 0;
    let completedWhenSecondChunkArrived: number | null = null;
    for await (const chunk of stream) {
      if (chunk.usage) usageChunks++;
      const content = chunk.choices[0]?.delta?.content;
      if (content) contents.push(content);
      if (contents.length === 2 && completedWhenSecondChunkArrived === null) {
        // The upstream is holding its stream open: these chunks cannot have been buffered.
        completedWhenSecondChunkArrived = upstream.completedStreams;
        upstream.resume();
      }
    }
    expect(completedWhenSecondChunkArrived).toBe(0);
    expect(contents.join('')).toBe(upstream.behavior.reply);
    expect(usageChunks).toBe(0);
    expect((upstream.requests[0]!.body!.stream_options as { include_usage: boolean }).include_usage).toBe(true);

    const rows = await ledgerRows(gateway, 'stream-exact');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ cost_source: 'provider', status: 'success', completion_tokens: upstream.behavior.reply.split(' ').length });
    expect(rows[0]!.cost).toBe(cost(promptTokensOf({ messages }), upstream.behavior.reply.split(' ').length));
    const info = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=stream-exact');
    expect(dollarsToPico(info.body.spend)).toBe(rows[0]!.cost);
  });

  it('passes exactly one usage chunk to a client that asked for it, with cached tokens priced as cached', async () => {
    upstream.behavior.cachedTokens = 0;
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'stream-usage', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'with usage please' }] });
    const usages = [];
    for await (const chunk of stream) if (chunk.usage) usages.push(chunk.usage);
    expect(usages).toHaveLength(1);
    const rows = await ledgerRows(gateway, 'stream-usage');
    expect(rows[0]!.cost).toBe(cost(usages[0]!.prompt_tokens, usages[0]!.completion_tokens));
    expect(rows[0]!.cost_source).toBe('provider');
  });

  it('bills a stream whose provider never reports usage from the prompt and the text (computed)', async () => {
    upstream.behavior.neverSendUsage = true;
    const messages = [{ role: 'user' as const, content: 'I never get usage from this server' }];
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'stream-computed', stream: true, messages });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe(upstream.behavior.reply);
    const rows = await ledgerRows(gateway, 'stream-computed');
    expect(rows[0]).toMatchObject({ cost_source: 'computed', status: 'success' });
    expect(rows[0]!.cost).toBe(cost(await countChatPromptTokensExact(messages), countTextTokens(upstream.behavior.reply)));
  });

  it('charges what was delivered when the client aborts after two chunks, and cancels the upstream', async () => {
    upstream.behavior.pauseAfterChunks = 2;
    const messages = [{ role: 'user' as const, content: 'I will hang up on you' }];
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'stream-abort', stream: true, messages });
    let delivered = '';
    let contentChunks = 0;
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content;
      delivered += content ?? '';
      if (content && ++contentChunks === 2) break; // leaving the loop aborts the SDK's request
    }
    expect(delivered).toBe('Hello from');
    const rows = await waitForLedgerRows(gateway, 'stream-abort');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ cost_source: 'estimated', status: 'partial' });
    expect(rows[0]!.cost).toBeGreaterThan(0n);
    expect(rows[0]!.cost).toBe(cost(await countChatPromptTokensExact(messages), countTextTokens('Hello from')));
    expect(await eventually(() => upstream.abortedStreams, (n) => n === 1)).toBe(1);
    expect(upstream.completedStreams).toBe(0);
  });

  it('charges what was delivered when the upstream resets mid-stream, and tells the client', async () => {
    upstream.behavior.mode = 'reset-mid-stream';
    const messages = [{ role: 'user' as const, content: 'the line will drop' }];
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'stream-reset', stream: true, messages });
    let delivered = '';
    const failure = await (async () => {
      try {
        for await (const chunk of stream) delivered += chunk.choices[0]?.delta?.content ?? '';
      } catch (error) {
        return error as Error;
      }
      return null;
    })();
    expect(failure?.message).toMatch(/upstream-gpt#\d+ failed/);
    expect(delivered).toBe('Hello from');
    const rows = await ledgerRows(gateway, 'stream-reset');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ cost_source: 'estimated', status: 'partial' });
    expect(rows[0]!.cost).toBe(cost(await countChatPromptTokensExact(messages), countTextTokens('Hello from')));
  });

  it('times out a stream that goes silent, charges what was delivered and cancels the upstream', async () => {
    upstream.behavior.pauseAfterChunks = 2; // and never resumed: silent after two chunks
    const messages = [{ role: 'user' as const, content: 'then silence' }];
    const stream = await client.chat.completions.create({ model: 'slow-gpt', user: 'stream-timeout', stream: true, messages });
    let delivered = '';
    await expect(
      (async () => {
        for await (const chunk of stream) delivered += chunk.choices[0]?.delta?.content ?? '';
      })(),
    ).rejects.toThrow(/did not answer within 1000 ms/);
    expect(delivered).toBe('Hello from');
    const rows = await ledgerRows(gateway, 'stream-timeout');
    expect(rows[0]).toMatchObject({ cost_source: 'estimated', status: 'partial' });
    expect(rows[0]!.cost).toBe(cost(await countChatPromptTokensExact(messages), countTextTokens('Hello from')));
    expect(await eventually(() => upstream.abortedStreams, (n) => n === 1)).toBe(1);
  });

  it('charges nothing when a stream goes silent before its first token, and releases the reservation', async () => {
    // $0.005 admits one request, but its reservation (4096 output tokens ≈ $0.008) would block the next.
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'stream-mute', max_budget: 0.005 })).status).toBe(200);
    upstream.behavior.pauseAfterChunks = 0; // headers and the role chunk, then silence
    const stream = await client.chat.completions.create({ model: 'slow-gpt', user: 'stream-mute', stream: true, messages: [{ role: 'user', content: 'are you there' }] });
    let delivered = '';
    await expect(
      (async () => {
        for await (const chunk of stream) delivered += chunk.choices[0]?.delta?.content ?? '';
      })(),
    ).rejects.toThrow(/did not answer within 1000 ms/);
    expect(delivered).toBe('');
    expect(await ledgerRows(gateway, 'stream-mute')).toEqual([]);
    upstream.reset();
    const completion = await client.chat.completions.create({ model: 'slow-gpt', user: 'stream-mute', messages: [{ role: 'user', content: 'now?' }] });
    expect(completion.choices[0]!.message.content).toBe(upstream.behavior.reply);
    expect(await ledgerRows(gateway, 'stream-mute')).toHaveLength(1);
  });

  it('answers 504 for an upstream that never answers, charges nothing and releases the reservation', async () => {
    // $0.005 admits one request, but its reservation (4096 output tokens ≈ $0.008) would block the next.
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'hang-customer', max_budget: 0.005 })).status).toBe(200);
    upstream.behavior.mode = 'hang';
    await expect(client.chat.completions.create({ model: 'slow-gpt', user: 'hang-customer', messages: [{ role: 'user', content: 'hello?' }] })).rejects.toMatchObject({ status: 504 });
    await expect(client.chat.completions.create({ model: 'slow-gpt', user: 'hang-customer', stream: true, messages: [{ role: 'user', content: 'hello?' }] })).rejects.toMatchObject({ status: 504 });
    upstream.behavior.mode = 'normal';
    const completion = await client.chat.completions.create({ model: 'slow-gpt', user: 'hang-customer', messages: [{ role: 'user', content: 'now?' }] });
    expect(completion.choices[0]!.message.content).toBe(upstream.behavior.reply);
    const rows = await ledgerRows(gateway, 'hang-customer');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.cost_source).toBe('provider');
  });

  it('maps upstream HTTP errors to OpenAI errors with meaningful statuses, charging nothing', async () => {
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'error-customer', max_budget: 0.005 })).status).toBe(200);
    upstream.behavior.mode = 'error';
    for (const [upstreamStatus, clientStatus] of [
      [400, 400],
      [429, 429],
      [401, 502],
      [500, 502],
      [503, 503],
    ] as const) {
      upstream.behavior.status = upstreamStatus;
      for (const stream of [false, true]) {
        const response = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
          body: JSON.stringify({ model: 'upstream-gpt', user: 'error-customer', stream, messages: [{ role: 'user', content: 'fail' }] }),
        });
        expect(response.status, `upstream ${upstreamStatus}, stream ${stream}`).toBe(clientStatus);
        const body = (await response.json()) as { error: { message: string; code: string; type: string } };
        expect(body.error.message).toContain(`answered ${upstreamStatus}: mock upstream failure ${upstreamStatus}`);
        expect(body.error.code).toBe(String(clientStatus));
      }
    }
    upstream.behavior.mode = 'normal';
    const completion = await client.chat.completions.create({ model: 'upstream-gpt', user: 'error-customer', messages: [{ role: 'user', content: 'works now' }] });
    expect(completion.choices).toHaveLength(1);
    const rows = await ledgerRows(gateway, 'error-customer');
    expect(rows).toHaveLength(1);
  });

  it('bills a non-streamed answer with provider usage even when the client left before it arrived', async () => {
    upstream.behavior.latencyMs = 300;
    const controller = new AbortController();
    const body = { model: 'upstream-gpt', user: 'json-leaver', messages: [{ role: 'user', content: 'answer slowly' }] };
    const pending = fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
      body: JSON.stringify(body),
      signal: controller.signal,
    }).catch((error: Error) => error);
    await eventually(() => upstream.requests.length, (n) => n === 1);
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    const rows = await waitForLedgerRows(gateway, 'json-leaver');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ cost_source: 'provider', status: 'partial' });
    expect(rows[0]!.cost).toBe(cost(promptTokensOf(body), upstream.behavior.reply.split(' ').length));
  });
});
