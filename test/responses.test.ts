/**
 * `POST /v1/responses` with the official openai SDK (6.49): native on an openai/ deployment,
 * translated through Chat Completions on another; streamed and not; `user` and
 * `safety_identifier` identify the customer; a function-tool round trip; previous_response_id
 * and GET /v1/responses/{id} from Tollgate's own store; a budget refusal the SDK does not retry.
 * Every spend is checked to the pico-dollar against what the recording upstream reported.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { api, MASTER_KEY } from './support/gateway';
import { anthropicInputTokensOf } from './support/anthropic-upstream';
import { CLAUDE, costOf, countingFetch, createCustomer, customerSpend, dollars, GPT, startApiRoutesHarness, type ApiRoutesHarness } from './support/api-routes';
import { ledgerRows } from './support/ledger';
import { promptTokensOf, responsesInputTokensOf, TOOL_CALL_TOKENS } from './support/mock-upstream';

describe('POST /v1/responses with the openai SDK', () => {
  let h: ApiRoutesHarness;
  let client: OpenAI;
  const replyWords = () => h.openai.behavior.reply.split(' ').length;

  beforeAll(async () => {
    h = await startApiRoutesHarness();
    client = new OpenAI({ baseURL: h.v1, apiKey: MASTER_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.reset());

  it('forwards natively to an openai/ deployment and bills the usage of the response, customer from `user`', async () => {
    const response = await client.responses.create({ model: 'gpt-native', input: 'Say hello to the gateway', instructions: 'Be brief.', user: 'resp-user', metadata: { trace: 't-1' } });
    expect(response.output_text).toBe(h.openai.behavior.reply);
    const sent = h.openai.requests[0]!;
    expect(sent.path).toBe('/v1/responses');
    expect(sent.headers.authorization).toBe('Bearer sk-upstream');
    expect(sent.body).toMatchObject({ model: 'gpt-test', input: 'Say hello to the gateway', instructions: 'Be brief.', user: 'resp-user', metadata: { trace: 't-1' } });
    const expected = costOf(GPT, { input: responsesInputTokensOf(sent.body!), output: replyWords() });
    const [row] = await ledgerRows(h.gateway, 'resp-user');
    expect(row).toMatchObject({ endpoint: 'responses', cost: expected, cost_source: 'provider', status: 'success' });
    expect(await customerSpend(h.gateway.url, 'resp-user')).toBe(dollars(expected));
  });

  it('streams natively event by event, identifies the customer by `safety_identifier`, and puts the cost in response.completed', async () => {
    const stream = await client.responses.create({ model: 'gpt-native', input: 'Stream it please', safety_identifier: 'resp-safety', stream: true });
    const types: string[] = [];
    let text = '';
    let completed: OpenAI.Responses.Response | null = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(text).toBe(h.openai.behavior.reply);
    expect(types[0]).toBe('response.created');
    expect(types[types.length - 1]).toBe('response.completed');
    const expected = costOf(GPT, { input: responsesInputTokensOf(h.openai.requests[0]!.body!), output: replyWords() });
    expect((completed!.usage as unknown as { cost: number }).cost).toBe(dollars(expected));
    expect(await customerSpend(h.gateway.url, 'resp-safety')).toBe(dollars(expected));
  });

  it('translates to Chat Completions for a deployment without a Responses API, both ways, and prices cached input at the cached rate', async () => {
    h.openai.behavior.cachedTokens = 2;
    const response = await client.responses.create({ model: 'gpt-chat', input: 'Hello through chat completions', instructions: 'You are terse.', max_output_tokens: 50, temperature: 0.2, user: 'resp-translated' });
    expect(response.output_text).toBe(h.openai.behavior.reply);
    expect(response.status).toBe('completed');
    const sent = h.openai.requests[0]!;
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.body).toMatchObject({ model: 'gpt-test', max_tokens: 50, temperature: 0.2, messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hello through chat completions' }] });
    const prompt = promptTokensOf(sent.body!);
    expect(response.usage).toMatchObject({ input_tokens: prompt, output_tokens: replyWords(), input_tokens_details: { cached_tokens: 2 } });
    const expected = costOf(GPT, { input: prompt - 2, cacheRead: 2, output: replyWords() });
    expect(await customerSpend(h.gateway.url, 'resp-translated')).toBe(dollars(expected));
  });

  it('streams a translated deployment as Responses events, stores the response and answers GET /v1/responses/{id} for its key only', async () => {
    const stream = await client.responses.create({ model: 'gpt-chat', input: 'Stream through chat', user: 'resp-translated-stream', stream: true });
    const types: string[] = [];
    let text = '';
    let completed: OpenAI.Responses.Response | null = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(text).toBe(h.openai.behavior.reply);
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    const expected = costOf(GPT, { input: promptTokensOf(h.openai.requests[0]!.body!), output: replyWords() });
    expect((completed!.usage as unknown as { cost: number }).cost).toBe(dollars(expected));
    expect(await customerSpend(h.gateway.url, 'resp-translated-stream')).toBe(dollars(expected));

    const again = await client.responses.retrieve(completed!.id);
    expect(again).toMatchObject({ id: completed!.id, status: 'completed', output: completed!.output });
    const other = await api<{ key: string }>(h.gateway.url, 'POST', '/key/generate', { key_alias: 'other-responses-key' });
    const otherClient = new OpenAI({ baseURL: h.v1, apiKey: other.body.key, maxRetries: 0 });
    await expect(otherClient.responses.retrieve(completed!.id)).rejects.toMatchObject({ status: 404 });
  });

  it('continues a translated conversation from previous_response_id; `store: false` keeps nothing', async () => {
    const first = await client.responses.create({ model: 'gpt-chat', input: 'My name is Ada.', user: 'resp-multi' });
    const second = await client.responses.create({ model: 'gpt-chat', input: 'What is my name?', previous_response_id: first.id, user: 'resp-multi' });
    expect(second.previous_response_id).toBe(first.id);
    expect(h.openai.requests[1]!.body!.messages).toEqual([
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: h.openai.behavior.reply },
      { role: 'user', content: 'What is my name?' },
    ]);
    const unstored = await client.responses.create({ model: 'gpt-chat', input: 'Forget me', store: false, user: 'resp-multi' });
    await expect(client.responses.create({ model: 'gpt-chat', input: 'again', previous_response_id: unstored.id })).rejects.toMatchObject({ status: 400, error: { param: 'previous_response_id' } });
    await expect(client.responses.retrieve(unstored.id)).rejects.toMatchObject({ status: 404 });
  });

  it('runs a function-tool round trip on a translated deployment', async () => {
    h.openai.behavior.toolCall = { name: 'get_weather', arguments: '{"city":"Paris"}' };
    const tools: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: true }];
    const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.responses.create({ model: 'gpt-chat', input, tools, tool_choice: 'auto', user: 'resp-tools' });
    const call = first.output.find((item) => item.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toMatchObject({ name: 'get_weather', arguments: '{"city":"Paris"}', call_id: 'call_mock01' });
    expect(h.openai.requests[0]!.body).toMatchObject({ tools: [{ type: 'function', function: { name: 'get_weather', strict: true } }], tool_choice: 'auto' });

    h.openai.behavior.toolCall = undefined;
    const second = await client.responses.create({ model: 'gpt-chat', input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: 'Sunny, 21°C' }], tools, user: 'resp-tools' });
    expect(second.output_text).toBe(h.openai.behavior.reply);
    expect(h.openai.requests[1]!.body!.messages).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_mock01', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_mock01', content: 'Sunny, 21°C' },
    ]);
    const expected = costOf(GPT, { input: promptTokensOf(h.openai.requests[0]!.body!), output: TOOL_CALL_TOKENS }) + costOf(GPT, { input: promptTokensOf(h.openai.requests[1]!.body!), output: h.openai.behavior.reply.split(' ').length });
    expect(await customerSpend(h.gateway.url, 'resp-tools')).toBe(dollars(expected));
  });

  it('reaches an anthropic/ deployment through chat and the Messages API, streamed and not, and the built-in mock model', async () => {
    const response = await client.responses.create({ model: 'claude', input: 'Hello Claude', instructions: 'Be brief.', user: 'resp-claude' });
    expect(response.output_text).toBe(h.anthropic.behavior.reply);
    const stream = await client.responses.create({ model: 'claude', input: 'Hello Claude', instructions: 'Be brief.', user: 'resp-claude', stream: true });
    let text = '';
    for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta;
    expect(text).toBe(h.anthropic.behavior.reply);
    expect(h.anthropic.requests.map((request) => request.path)).toEqual(['/v1/messages', '/v1/messages']);
    expect(h.anthropic.requests[0]!.body).toMatchObject({ system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello Claude' }] }] });
    const one = costOf(CLAUDE, { input: anthropicInputTokensOf(h.anthropic.requests[0]!.body), output: h.anthropic.behavior.reply.split(' ').length });
    expect(await customerSpend(h.gateway.url, 'resp-claude')).toBe(dollars(one * 2n));
    const mock = await client.responses.create({ model: 'gpt-3.5-turbo', input: 'Hello mock' });
    expect(mock.output_text).toContain('You said: Hello mock');
  });

  it('refuses with a 400 naming what a translated deployment cannot do (built-in tools, background)', async () => {
    await expect(client.responses.create({ model: 'gpt-chat', input: 'search', tools: [{ type: 'web_search' }] })).rejects.toMatchObject({ status: 400, error: { param: 'tools[0].type', message: expect.stringContaining('web_search') } });
    await expect(client.responses.create({ model: 'gpt-chat', input: 'later', background: true })).rejects.toMatchObject({ status: 400, error: { param: 'background' } });
    expect(h.openai.requests).toHaveLength(0);
  });

  it('refuses a customer at max_budget 0 with a status the SDK does not retry, and the upstream sees nothing', async () => {
    await createCustomer(h.gateway.url, 'resp-broke', { max_budget: 0 });
    const counter = countingFetch();
    const retrying = new OpenAI({ baseURL: h.v1, apiKey: MASTER_KEY, maxRetries: 3, fetch: counter.fetch });
    await expect(retrying.responses.create({ model: 'gpt-native', input: 'hi', safety_identifier: 'resp-broke' })).rejects.toMatchObject({ status: 402, error: { type: 'budget_exceeded' } });
    await expect(retrying.responses.create({ model: 'gpt-chat', input: 'hi', user: 'resp-broke', stream: true })).rejects.toMatchObject({ status: 402 });
    expect(counter.count()).toBe(2);
    expect(h.openai.requests).toHaveLength(0);
  });
});
