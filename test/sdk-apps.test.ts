/**
 * The apps of the README, pointed at Tollgate and changed in nothing else: the Vercel AI SDK
 * (ai 6 + @ai-sdk/openai 3; its default `openai(model)` calls /responses, `openai.chat(model)`
 * /chat/completions) and LangChain's ChatOpenAI with `useResponsesApi: true`. Streamed and
 * not, a multi-step tool call, exact spend per customer, and a budget refusal neither retries.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { costOf, countingFetch, createCustomer, customerSpend, dollars, GPT, startApiRoutesHarness, type ApiRoutesHarness } from './support/api-routes';
import { MASTER_KEY } from './support/gateway';
import { ledgerRows } from './support/ledger';
import { promptTokensOf, responsesInputTokensOf, TOOL_CALL_TOKENS } from './support/mock-upstream';

describe('client SDK apps', () => {
  let h: ApiRoutesHarness;
  let openai: ReturnType<typeof createOpenAI>;
  const words = () => h.openai.behavior.reply.split(' ').length;

  beforeAll(async () => {
    h = await startApiRoutesHarness();
    openai = createOpenAI({ baseURL: h.v1, apiKey: MASTER_KEY });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.reset());

  describe('Vercel AI SDK', () => {
    it('generateText and streamText with the default openai(model) provider go to /responses, billed exactly', async () => {
      const generated = await generateText({ model: openai('gpt-native'), prompt: 'Hello from the AI SDK', providerOptions: { openai: { safetyIdentifier: 'ai-default' } } });
      expect(generated.text).toBe(h.openai.behavior.reply);
      const streamed = streamText({ model: openai('gpt-chat'), prompt: 'Stream from the AI SDK', providerOptions: { openai: { safetyIdentifier: 'ai-default' } } });
      expect(await streamed.text).toBe(h.openai.behavior.reply);
      expect((await streamed.usage).inputTokens).toBe(promptTokensOf(h.openai.requests[1]!.body!));
      const nativeStream = streamText({ model: openai('gpt-native'), prompt: 'Native stream', providerOptions: { openai: { safetyIdentifier: 'ai-default' } } });
      expect(await nativeStream.text).toBe(h.openai.behavior.reply);
      expect(h.openai.requests.map((request) => request.path)).toEqual(['/v1/responses', '/v1/chat/completions', '/v1/responses']);
      expect(h.openai.requests[2]!.body).toMatchObject({ stream: true, safety_identifier: 'ai-default' });
      const expected =
        costOf(GPT, { input: responsesInputTokensOf(h.openai.requests[0]!.body!), output: words() }) +
        costOf(GPT, { input: promptTokensOf(h.openai.requests[1]!.body!), output: words() }) +
        costOf(GPT, { input: responsesInputTokensOf(h.openai.requests[2]!.body!), output: words() });
      expect(await customerSpend(h.gateway.url, 'ai-default')).toBe(dollars(expected));
      expect((await ledgerRows(h.gateway, 'ai-default')).map((row) => row.endpoint)).toEqual(['responses', 'responses', 'responses']);
    });

    it('generateText and streamText with openai.chat(model) go to /chat/completions', async () => {
      const generated = await generateText({ model: openai.chat('gpt-native'), prompt: 'Chat from the AI SDK', providerOptions: { openai: { user: 'ai-chat' } } });
      expect(generated.text).toBe(h.openai.behavior.reply);
      const streamed = streamText({ model: openai.chat('gpt-native'), prompt: 'Chat stream', providerOptions: { openai: { user: 'ai-chat' } } });
      expect(await streamed.text).toBe(h.openai.behavior.reply);
      expect(h.openai.requests.map((request) => request.path)).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
      const expected = h.openai.requests.reduce((sum, request) => sum + costOf(GPT, { input: promptTokensOf(request.body!), output: words() }), 0n);
      expect(await customerSpend(h.gateway.url, 'ai-chat')).toBe(dollars(expected));
    });

    it('continues a conversation on a translated deployment: the SDK sends item_reference for the stored answer, Tollgate resolves it', async () => {
      const counter = countingFetch();
      const counted = createOpenAI({ baseURL: h.v1, apiKey: MASTER_KEY, fetch: counter.fetch });
      const first = await generateText({ model: counted('gpt-chat'), prompt: 'My name is Ada.', providerOptions: { openai: { safetyIdentifier: 'ai-multi' } } });
      const second = await generateText({ model: counted('gpt-chat'), messages: [{ role: 'user', content: 'My name is Ada.' }, ...first.response.messages, { role: 'user', content: 'What is my name?' }], providerOptions: { openai: { safetyIdentifier: 'ai-multi' } } });
      expect(second.text).toBe(h.openai.behavior.reply);
      expect((counter.bodies[1] as { input: unknown[] }).input).toContainEqual({ type: 'item_reference', id: expect.stringMatching(/^msg_/) });
      expect(h.openai.requests[1]!.body!.messages).toEqual([
        { role: 'user', content: 'My name is Ada.' },
        { role: 'assistant', content: h.openai.behavior.reply },
        { role: 'user', content: 'What is my name?' },
      ]);
    });

    it('runs a multi-step tool call through a translated deployment', async () => {
      h.openai.behavior.toolCall = { name: 'weather', arguments: '{"city":"Paris"}' };
      let calls = 0;
      const weather = tool({
        description: 'Weather of a city',
        inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false }),
        execute: async ({ city }) => {
          calls++;
          h.openai.behavior.toolCall = undefined; // the next step answers in text
          return `Sunny in ${city}`;
        },
      });
      const result = await generateText({ model: openai('gpt-chat'), prompt: 'Weather in Paris?', tools: { weather }, stopWhen: stepCountIs(3), providerOptions: { openai: { safetyIdentifier: 'ai-tools' } } });
      expect(calls).toBe(1);
      expect(result.text).toBe(h.openai.behavior.reply);
      expect(h.openai.requests[1]!.body!.messages).toEqual([
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_mock01', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_mock01', content: expect.stringContaining('Sunny in Paris') },
      ]);
      const expected = costOf(GPT, { input: promptTokensOf(h.openai.requests[0]!.body!), output: TOOL_CALL_TOKENS }) + costOf(GPT, { input: promptTokensOf(h.openai.requests[1]!.body!), output: words() });
      expect(await customerSpend(h.gateway.url, 'ai-tools')).toBe(dollars(expected));
    });

    it('does not retry a budget refusal, on either provider', async () => {
      await createCustomer(h.gateway.url, 'ai-broke', { max_budget: 0 });
      const counter = countingFetch();
      const counted = createOpenAI({ baseURL: h.v1, apiKey: MASTER_KEY, fetch: counter.fetch });
      await expect(generateText({ model: counted('gpt-native'), prompt: 'hi', maxRetries: 3, providerOptions: { openai: { safetyIdentifier: 'ai-broke' } } })).rejects.toMatchObject({ statusCode: 402, isRetryable: false });
      await expect(generateText({ model: counted.chat('gpt-native'), prompt: 'hi', maxRetries: 3, providerOptions: { openai: { user: 'ai-broke' } } })).rejects.toMatchObject({ statusCode: 402 });
      expect(counter.count()).toBe(2);
      expect(h.openai.requests).toHaveLength(0);
    });
  });

  describe('LangChain ChatOpenAI with useResponsesApi', () => {
    const chatModel = (customer: string, fetchImpl?: typeof fetch, model = 'gpt-chat') =>
      new ChatOpenAI({ model, apiKey: MASTER_KEY, useResponsesApi: true, configuration: { baseURL: h.v1, defaultHeaders: { 'x-litellm-customer-id': customer }, fetch: fetchImpl } });

    it('invokes and streams through /responses, billed exactly', async () => {
      const model = chatModel('lc-user');
      const answer = await model.invoke('Hello from LangChain');
      expect(answer.content).toEqual([expect.objectContaining({ type: 'text', text: h.openai.behavior.reply })]);
      let streamed = '';
      for await (const chunk of await model.stream('Stream from LangChain')) streamed += typeof chunk.content === 'string' ? chunk.content : chunk.content.map((part) => ('text' in part ? part.text : '')).join('');
      expect(streamed).toBe(h.openai.behavior.reply);
      const expected = h.openai.requests.reduce((sum, request) => sum + costOf(GPT, { input: promptTokensOf(request.body!), output: words() }), 0n);
      expect(h.openai.requests).toHaveLength(2);
      expect(await customerSpend(h.gateway.url, 'lc-user')).toBe(dollars(expected));
    });

    it('reaches a native Responses deployment as sent', async () => {
      const answer = await chatModel('lc-native', undefined, 'gpt-native').invoke('Hello natively');
      expect(answer.content).toEqual([expect.objectContaining({ type: 'text', text: h.openai.behavior.reply })]);
      expect(h.openai.requests[0]!.path).toBe('/v1/responses');
      expect(await customerSpend(h.gateway.url, 'lc-native')).toBe(dollars(costOf(GPT, { input: responsesInputTokensOf(h.openai.requests[0]!.body!), output: words() })));
    });

    it('does not retry a budget refusal', async () => {
      await createCustomer(h.gateway.url, 'lc-broke', { max_budget: 0 });
      const counter = countingFetch();
      await expect(chatModel('lc-broke', counter.fetch).invoke('hi')).rejects.toMatchObject({ status: 402 });
      expect(counter.count()).toBe(1);
      expect(h.openai.requests).toHaveLength(0);
    });
  });
});
