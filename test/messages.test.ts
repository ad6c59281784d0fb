/**
 * `POST /v1/messages` and `/v1/messages/count_tokens` with @anthropic-ai/sdk (1.14): native on
 * an anthropic/ deployment (every event passed through, anthropic-version and -beta forwarded,
 * cache reads and writes at their own prices), translated through Chat Completions on an
 * OpenAI-compatible one; streamed and not; tool_use round trips; Anthropic's error envelope;
 * a budget refusal the SDK does not retry. Spend is checked to the pico-dollar.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { anthropicInputTokensOf } from './support/anthropic-upstream';
import { costOf, countingFetch, createCustomer, customerSpend, dollars, CLAUDE, GPT, startApiRoutesHarness, type ApiRoutesHarness } from './support/api-routes';
import { MASTER_KEY } from './support/gateway';
import { ledgerRows } from './support/ledger';
import { promptTokensOf, TOOL_CALL_TOKENS } from './support/mock-upstream';

describe('POST /v1/messages with the Anthropic SDK', () => {
  let h: ApiRoutesHarness;
  let client: Anthropic;

  beforeAll(async () => {
    h = await startApiRoutesHarness();
    client = new Anthropic({ baseURL: h.gateway.url, apiKey: MASTER_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.reset());

  it('forwards natively to anthropic/, customer from metadata.user_id, cache reads and writes at their own prices', async () => {
    h.anthropic.behavior.cacheReadTokens = 100;
    h.anthropic.behavior.cacheWriteTokens = 50;
    const message = await client.messages.create(
      { model: 'claude', max_tokens: 200, system: 'You are terse.', messages: [{ role: 'user', content: 'Say hello' }], metadata: { user_id: 'msg-native' } },
      { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31', 'anthropic-version': '2023-06-01' } },
    );
    expect(message.content).toEqual([{ type: 'text', text: h.anthropic.behavior.reply }]);
    const sent = h.anthropic.requests[0]!;
    expect(sent.path).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe('sk-ant-test');
    expect(sent.headers['anthropic-version']).toBe('2023-06-01');
    expect(sent.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31');
    expect(sent.body).toEqual({ model: 'claude-test', max_tokens: 200, system: 'You are terse.', messages: [{ role: 'user', content: 'Say hello' }], metadata: { user_id: 'msg-native' } });
    const input = anthropicInputTokensOf(sent.body);
    const output = h.anthropic.behavior.reply.split(' ').length;
    expect(message.usage).toMatchObject({ input_tokens: input, output_tokens: output, cache_read_input_tokens: 100, cache_creation_input_tokens: 50 });
    const expected = costOf(CLAUDE, { input, output, cacheRead: 100, cacheWrite: 50 });
    const [row] = await ledgerRows(h.gateway, 'msg-native');
    expect(row).toMatchObject({ endpoint: 'messages', provider: 'anthropic', cost: expected, cached_prompt_tokens: 100, cache_write_tokens: 50 });
    expect(await customerSpend(h.gateway.url, 'msg-native')).toBe(dollars(expected));
  });

  it('prices 1-hour cache writes at the 1-hour rate (twice the input price unless configured)', async () => {
    h.anthropic.behavior.cacheWriteTokens = 50;
    h.anthropic.behavior.cacheWrite1hTokens = 30;
    await client.messages.create({
      model: 'claude',
      max_tokens: 200,
      system: [{ type: 'text', text: 'A long, cached system prompt.', cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: 'Hi' }],
      metadata: { user_id: 'msg-cache-1h' },
    });
    const input = anthropicInputTokensOf(h.anthropic.requests[0]!.body);
    const output = h.anthropic.behavior.reply.split(' ').length;
    const expected = costOf(CLAUDE, { input, output, cacheWrite: 20 }) + 30n * 2n * CLAUDE.input;
    expect((await ledgerRows(h.gateway, 'msg-cache-1h'))[0]).toMatchObject({ cost: expected, cache_write_tokens: 50 });
    expect(await customerSpend(h.gateway.url, 'msg-cache-1h')).toBe(dollars(expected));
  });

  it('streams natively event by event, with the cost in message_delta', async () => {
    const stream = client.messages.stream({ model: 'claude', max_tokens: 200, messages: [{ role: 'user', content: 'Stream hello' }] }, { headers: { 'x-litellm-customer-id': 'msg-native-stream' } });
    const types: string[] = [];
    let deltaUsage: Record<string, unknown> | null = null;
    stream.on('streamEvent', (event) => {
      types.push(event.type);
      if (event.type === 'message_delta') deltaUsage = event.usage as unknown as Record<string, unknown>;
    });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: h.anthropic.behavior.reply }]);
    expect(types[0]).toBe('message_start');
    expect(types[types.length - 1]).toBe('message_stop');
    const expected = costOf(CLAUDE, { input: anthropicInputTokensOf(h.anthropic.requests[0]!.body), output: h.anthropic.behavior.reply.split(' ').length });
    expect(deltaUsage!.cost).toBe(dollars(expected));
    expect(await customerSpend(h.gateway.url, 'msg-native-stream')).toBe(dollars(expected));

    // Every upstream event passes through, those the SDK skips (ping) included.
    const raw = await fetch(`${h.gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': MASTER_KEY },
      body: JSON.stringify({ model: 'claude', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'raw' }] }),
    });
    const text = await raw.text();
    expect(text).toContain('event: ping\ndata: {"type":"ping"}');
    expect(text).toContain('event: content_block_stop');
  });

  it('translates to Chat Completions for other deployments, both ways', async () => {
    const message = await client.messages.create({
      model: 'gpt-chat',
      max_tokens: 64,
      system: [{ type: 'text', text: 'You are terse.' }],
      stop_sequences: ['END'],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello via chat' }] }],
      metadata: { user_id: 'msg-translated' },
    });
    expect(message).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'text', text: h.openai.behavior.reply }], stop_reason: 'end_turn' });
    const sent = h.openai.requests[0]!;
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.body).toMatchObject({ model: 'gpt-test', max_tokens: 64, stop: ['END'], messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hello via chat' }] });
    const prompt = promptTokensOf(sent.body!);
    const output = h.openai.behavior.reply.split(' ').length;
    expect(message.usage).toMatchObject({ input_tokens: prompt, output_tokens: output });
    expect(await customerSpend(h.gateway.url, 'msg-translated')).toBe(dollars(costOf(GPT, { input: prompt, output })));
  });

  it('streams a translated deployment as Messages events', async () => {
    const stream = client.messages.stream({ model: 'gpt-native', max_tokens: 64, messages: [{ role: 'user', content: 'Stream via chat' }], metadata: { user_id: 'msg-translated-stream' } });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: h.openai.behavior.reply }]);
    const prompt = promptTokensOf(h.openai.requests[0]!.body!);
    const output = h.openai.behavior.reply.split(' ').length;
    expect(message.usage).toMatchObject({ input_tokens: prompt, output_tokens: output });
    expect(await customerSpend(h.gateway.url, 'msg-translated-stream')).toBe(dollars(costOf(GPT, { input: prompt, output })));
  });

  it('runs tool_use round trips, native and translated, streamed and not', async () => {
    const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
    h.anthropic.behavior.toolCall = { name: 'get_weather', input: { city: 'Paris' } };
    h.openai.behavior.toolCall = { name: 'get_weather', arguments: '{"city":"Paris"}' };
    for (const model of ['claude', 'gpt-chat']) {
      const question: Anthropic.MessageParam = { role: 'user', content: 'Weather in Paris?' };
      const first = await client.messages.create({ model, max_tokens: 100, tools, messages: [question], metadata: { user_id: 'msg-tools' } });
      const use = first.content.find((block) => block.type === 'tool_use') as Anthropic.ToolUseBlock;
      expect(first.stop_reason).toBe('tool_use');
      expect(use).toMatchObject({ name: 'get_weather', input: { city: 'Paris' } });
      const streamed = await client.messages.stream({ model, max_tokens: 100, tools, messages: [question] }).finalMessage();
      expect(streamed.content.find((block) => block.type === 'tool_use')).toMatchObject({ name: 'get_weather', input: { city: 'Paris' } });
      await client.messages.create({
        model,
        max_tokens: 100,
        tools,
        messages: [question, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'Sunny' }] }],
      });
    }
    // Translated: the tool result reached the chat upstream as a tool message after the call.
    const last = h.openai.requests[h.openai.requests.length - 1]!.body!;
    expect(last.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: tools[0]!.input_schema } }]);
    expect(last.messages).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_mock01', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_mock01', content: 'Sunny' },
    ]);
    const rows = await ledgerRows(h.gateway, 'msg-tools');
    expect(rows.map((row) => row.completion_tokens)).toEqual([12, TOOL_CALL_TOKENS]);
  });

  it('refuses a customer at max_budget 0 in Anthropic’s envelope, with a status the SDK does not retry; the upstream sees nothing', async () => {
    await createCustomer(h.gateway.url, 'msg-broke', { max_budget: 0 });
    const counter = countingFetch();
    const retrying = new Anthropic({ baseURL: h.gateway.url, apiKey: MASTER_KEY, maxRetries: 3, fetch: counter.fetch });
    const error = await retrying.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: 'msg-broke' } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error).toMatchObject({ status: 402, error: { type: 'error', error: { type: 'billing_error', message: expect.stringContaining('msg-broke') } } });
    await expect(retrying.messages.stream({ model: 'gpt-chat', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: 'msg-broke' } }).finalMessage()).rejects.toMatchObject({ status: 402 });
    expect(counter.count()).toBe(2);
    expect(h.anthropic.requests).toHaveLength(0);
    expect(h.openai.requests).toHaveLength(0);
  });

  it('takes the key as x-api-key too, and answers auth and validation errors in Anthropic’s envelope', async () => {
    const call = (headers: Record<string, string>, body: unknown) =>
      fetch(`${h.gateway.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers }, body: JSON.stringify(body) });
    const ok = await call({ 'x-api-key': MASTER_KEY }, { model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    expect(ok.status).toBe(200);
    const bad = await call({ 'x-api-key': 'sk-wrong' }, { model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    const invalid = await call({ 'x-api-key': MASTER_KEY }, { model: 'claude', messages: [{ role: 'user', content: 'hi' }] });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens') } });
  });

  it('counts tokens natively on anthropic/ and with the tokenizer elsewhere, free of charge', async () => {
    const native = await client.messages.countTokens({ model: 'claude', system: 'Be brief.', messages: [{ role: 'user', content: 'Count me' }] });
    expect(native.input_tokens).toBe(anthropicInputTokensOf({ system: 'Be brief.', messages: [{ role: 'user', content: 'Count me' }] }));
    expect(h.anthropic.requests[0]).toMatchObject({ path: '/v1/messages/count_tokens', body: { model: 'claude-test', system: 'Be brief.' } });
    const translated = await client.messages.countTokens({ model: 'gpt-chat', messages: [{ role: 'user', content: 'Count me' }] });
    expect(translated.input_tokens).toBeGreaterThan(0);
    expect(h.openai.requests).toHaveLength(0);
  });

  it('lists models in Anthropic’s shape for the Anthropic SDK and in OpenAI’s otherwise', async () => {
    const page = await client.models.list();
    expect(page.data.map((model) => model.id)).toContain('claude');
    expect(page.data[0]).toMatchObject({ type: 'model', display_name: expect.any(String) });
    const openaiShape = await fetch(`${h.gateway.url}/v1/models`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
    expect(await openaiShape.json()).toMatchObject({ object: 'list', data: expect.arrayContaining([expect.objectContaining({ id: 'claude', object: 'model' })]) });
  });
});
