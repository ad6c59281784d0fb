/** The Responses ⇄ Chat Completions translators and the native pass-through, on recorded-style fixtures. */
import { describe, expect, it } from 'vitest';
import type { Deployment } from '../../../config/load';
import { OpenAIStreamTranslator } from '../../../providers/openai-compatible/stream';
import { contextFor } from '../../../providers/fixtures.test-support';
import type { SseOut } from '../../../providers/types';
import { GatewayError } from '../../../shared/errors';
import { createResponsesFormat } from '.';
import { chatEvents, formatFixture } from '../fixtures.test-support';
import { ChatToResponsesStream } from './chat-stream-to-responses';
import { fromChatCompletion } from './from-chat-response';
import { NativeResponsesStream, nativeResponsesRequest } from './native';
import { inputItemsOf, toChatRequest } from './to-chat-request';

type Json = Record<string, unknown>;


function translated(name: 'text' | 'tool', request: Json = { model: 'm', input: 'hi' }): { events: Json[]; translator: ChatToResponsesStream } {
  const inner = new OpenAIStreamTranslator(contextFor('openai', true));
  const translator = new ChatToResponsesStream(inner, request, 'resp_test', 1764300000);
  const out: SseOut[] = [];
  for (const event of chatEvents(name)) out.push(...translator.onEvent(event));
  out.push(...translator.finish());
  const events = out.map((payload) => {
    if (typeof payload === 'string') throw new Error('Responses events are named');
    const data = JSON.parse(payload.data) as Json;
    expect(payload.event).toBe(data.type);
    return data;
  });
  return { events, translator };
}

describe('Responses request → Chat Completions request', () => {
  it('maps instructions, every input item kind, tools, tool_choice, text.format and the sampling fields', () => {
    const body: Json = {
      model: 'm',
      instructions: 'Be brief.',
      max_output_tokens: 300,
      temperature: 0.3,
      top_p: 0.9,
      parallel_tool_calls: false,
      user: 'u-1',
      metadata: { trace: 't' },
      tools: [{ type: 'function', name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true }],
      tool_choice: { type: 'function', name: 'get_weather' },
      text: { format: { type: 'json_schema', name: 'weather', schema: { type: 'object' }, strict: true } },
      input: [
        { role: 'developer', content: 'Answer in English.' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather here?' }, { type: 'input_image', image_url: 'https://example.test/paris.png', detail: 'low' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Checking.', annotations: [] }] },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'reasoning', id: 'rs_1', summary: [] },
        { type: 'function_call_output', call_id: 'call_1', output: 'Sunny' },
      ],
    };
    expect(toChatRequest(body, inputItemsOf(body.input))).toEqual({
      model: 'm',
      max_tokens: 300,
      temperature: 0.3,
      top_p: 0.9,
      parallel_tool_calls: false,
      user: 'u-1',
      metadata: { trace: 't' },
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      response_format: { type: 'json_schema', json_schema: { name: 'weather', schema: { type: 'object' }, strict: true } },
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'system', content: 'Answer in English.' },
        { role: 'user', content: [{ type: 'text', text: 'Weather here?' }, { type: 'image_url', image_url: { url: 'https://example.test/paris.png', detail: 'low' } }] },
        { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'Sunny' },
      ],
    });
    expect(toChatRequest({ model: 'm', input: 'x', text: { format: { type: 'json_object' } } }, inputItemsOf('x')).response_format).toEqual({ type: 'json_object' });
  });

  it.each([
    [{ tools: [{ type: 'web_search' }] }, 'tools[0].type', 'web_search'],
    [{ tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }, 'tools[0].type', 'file_search'],
    [{ background: true }, 'background', 'background'],
    [{ conversation: 'conv_1' }, 'conversation', 'conversation'],
    [{ tool_choice: { type: 'web_search' } }, 'tool_choice', 'tool_choice'],
  ])('refuses %j with a 400 naming it', (extra, param, named) => {
    const body = { model: 'm', input: 'hi', ...extra };
    let caught: unknown;
    try {
      toChatRequest(body, inputItemsOf(body.input));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(GatewayError);
    expect(caught).toMatchObject({ status: 400, param, message: expect.stringContaining(named) });
  });

  it('refuses input items Chat Completions has no form for', () => {
    expect(() => toChatRequest({ model: 'm' }, [{ type: 'computer_call_output', call_id: 'c' }])).toThrow(/computer_call_output/);
  });
});

describe('Chat Completions → Responses', () => {
  it('turns a text stream into Responses events, usage (cached split) in response.completed', () => {
    const { events, translator } = translated('text');
    expect(events.map((event) => event.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, index) => index));
    expect(events.filter((event) => event.type === 'response.output_text.delta').map((event) => event.delta).join('')).toBe('Paris is the capital of France.');
    const completed = events[events.length - 1]!.response as Json;
    expect(completed).toMatchObject({ id: 'resp_test', status: 'completed', output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Paris is the capital of France.' }] }] });
    expect(completed.usage).toEqual({ input_tokens: 1543, input_tokens_details: { cached_tokens: 1280 }, output_tokens: 8, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 1551 });
    expect(translator.usage).toEqual({ promptTokens: 1543, completionTokens: 8, cachedPromptTokens: 1280 });
    expect(translator.finalResponse).toEqual(completed);
  });

  it('turns a tool-call stream into a function_call item with its arguments', () => {
    const { events } = translated('tool');
    expect(events.map((event) => event.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events[2]!.item).toMatchObject({ type: 'function_call', call_id: 'call_TollgateWeather01', name: 'get_weather', status: 'in_progress' });
    expect(events[5]!.arguments).toBe('{"city":"Paris"}');
    expect((events[7]!.response as Json).output).toEqual([expect.objectContaining({ type: 'function_call', call_id: 'call_TollgateWeather01', name: 'get_weather', arguments: '{"city":"Paris"}', status: 'completed' })]);
  });

  it('turns a completion into a response: tool calls into items, length into incomplete', () => {
    const request = { model: 'm', input: 'hi', max_output_tokens: 5 };
    const completion = { model: 'gpt-x', choices: [{ index: 0, message: { role: 'assistant', content: 'Cut', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'length' }] };
    const response = fromChatCompletion(completion, request, { promptTokens: 3, completionTokens: 5 }, 'resp_1', 1);
    expect(response).toMatchObject({ id: 'resp_1', object: 'response', status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, model: 'gpt-x', max_output_tokens: 5, usage: { input_tokens: 3, output_tokens: 5 } });
    expect((response.output as Json[]).map((item) => item.type)).toEqual(['message', 'function_call']);
  });
});

describe('native Responses', () => {
  const events = formatFixture('openai-responses-text.events.txt', true) as { event: string; data: string }[];

  it('passes every event through unchanged and reads the usage of response.completed', () => {
    const stream = new NativeResponsesStream();
    const out = events.flatMap((event) => stream.onEvent(event));
    expect(out).toEqual(events);
    expect(stream.finished).toBe(true);
    expect(stream.usage).toEqual({ promptTokens: 1543, completionTokens: 8, cachedPromptTokens: 1280 });
    expect(stream.deliveredText).toBe('Paris is the capital of France.');
  });

  it('adds the cost to the terminal event only', () => {
    const format = createResponsesFormat(null);
    const figures = { cost: '0.000123', budgetRemaining: '4.5' };
    expect(format.withCost(events[4]!, figures)).toBeNull();
    const patched = format.withCost(events[events.length - 1]!, figures) as { event: string; data: string };
    expect(patched.event).toBe('response.completed');
    expect((JSON.parse(patched.data) as { response: { usage: Json } }).response.usage).toMatchObject({ input_tokens: 1543, cost: 0.000123, budget_remaining: 4.5 });
  });

  it('addresses OpenAI and Azure (resource v1 path, api-key header), keeping the body but the model', () => {
    const deployment = { id: 'a#0', provider: 'azure', upstreamModel: 'my-deployment', apiBase: 'https://res.openai.azure.com/', apiKey: 'az' } as Deployment;
    const request = nativeResponsesRequest(deployment, { model: 'public', input: 'hi', previous_response_id: 'resp_up', litellm_metadata: { x: 1 } });
    expect(request.url).toBe('https://res.openai.azure.com/openai/v1/responses');
    expect(request.headers['api-key']).toBe('az');
    expect(JSON.parse(request.body!)).toEqual({ model: 'my-deployment', input: 'hi', previous_response_id: 'resp_up' });
    const openai = nativeResponsesRequest({ ...deployment, provider: 'openai', apiBase: undefined }, { model: 'p', input: 'hi' });
    expect(openai.url).toBe('https://api.openai.com/v1/responses');
    expect(openai.headers.authorization).toBe('Bearer az');
  });
});
