/** The Messages ⇄ Chat Completions translators and the native pass-through, on recorded-style fixtures. */
import { describe, expect, it } from 'vitest';
import { fixtureEvents, contextFor } from '../../../providers/fixtures.test-support';
import { OpenAIStreamTranslator } from '../../../providers/openai-compatible/stream';
import type { SseOut } from '../../../providers/types';
import { GatewayError } from '../../../shared/errors';
import { chatEvents } from '../fixtures.test-support';
import { anthropicErrorBody, messagesFormat } from '.';
import { ChatToMessagesStream, fromChatCompletion } from './from-chat';
import { NativeMessagesStream } from './native';
import { toChatRequest } from './to-chat-request';

type Json = Record<string, unknown>;

function translated(name: 'text' | 'tool'): { events: Json[]; translator: ChatToMessagesStream } {
  const translator = new ChatToMessagesStream(new OpenAIStreamTranslator(contextFor('openai', true)), 'public-model', 'msg_test');
  const out: SseOut[] = [];
  for (const event of chatEvents(name)) out.push(...translator.onEvent(event));
  out.push(...translator.finish());
  const events = out.map((payload) => {
    if (typeof payload === 'string') throw new Error('Messages events are named');
    const data = JSON.parse(payload.data) as Json;
    expect(payload.event).toBe(data.type);
    return data;
  });
  return { events, translator };
}

describe('Messages request → Chat Completions request', () => {
  it('maps system, text and image blocks, tool_use and tool_result, stop_sequences, tool_choice and metadata.user_id', () => {
    const chat = toChatRequest({
      model: 'm',
      max_tokens: 100,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      stop_sequences: ['END'],
      temperature: 0.5,
      metadata: { user_id: 'cust-1' },
      tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Look:' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } }] },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }, { type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'Sunny' }] }, { type: 'text', text: 'And tomorrow?' }] },
      ],
    });
    expect(chat).toEqual({
      model: 'm',
      max_tokens: 100,
      temperature: 0.5,
      stop: ['END'],
      user: 'cust-1',
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Look:' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } }] },
        { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'Sunny' },
        { role: 'user', content: 'And tomorrow?' },
      ],
    });
  });

  it.each([
    [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'tools[0].type'],
    [{ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'url', url: 'https://x.test/a.pdf' } }] }] }, 'messages[0].content[0].type'],
    [{ messages: [{ role: 'system', content: 'no' }] }, 'messages[0].role'],
  ])('refuses %j with a 400 naming the field', (extra, param) => {
    let caught: unknown;
    try {
      toChatRequest({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...extra });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(GatewayError);
    expect(caught).toMatchObject({ status: 400, param });
  });
});

describe('Chat Completions → Messages', () => {
  it('turns a text stream into Messages events, the Anthropic usage split in message_delta', () => {
    const { events } = translated('text');
    expect(events.map((event) => event.type)).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(events[0]!.message).toMatchObject({ id: 'msg_test', model: 'public-model', role: 'assistant', content: [] });
    expect(events.filter((event) => event.type === 'content_block_delta').map((event) => (event.delta as { text: string }).text).join('')).toBe('Paris is the capital of France.');
    expect(events[6]).toEqual({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 1543 - 1280, output_tokens: 8, cache_read_input_tokens: 1280, cache_creation_input_tokens: 0 } });
  });

  it('turns a tool-call stream into a tool_use block with input_json_delta', () => {
    const { events } = translated('tool');
    expect(events[1]).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'call_TollgateWeather01', name: 'get_weather', input: {} } });
    expect(events.filter((event) => event.type === 'content_block_delta').map((event) => (event.delta as { partial_json: string }).partial_json).join('')).toBe('{"city":"Paris"}');
    expect(events.find((event) => event.type === 'message_delta')!.delta).toMatchObject({ stop_reason: 'tool_use' });
  });

  it('turns a completion into a message', () => {
    const message = fromChatCompletion(
      { choices: [{ index: 0, message: { role: 'assistant', content: 'On it.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'tool_calls' }] },
      'public-model',
      { promptTokens: 10, completionTokens: 4, cachedPromptTokens: 6 },
    );
    expect(message).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'public-model',
      content: [{ type: 'text', text: 'On it.' }, { type: 'tool_use', id: 'call_1', name: 'f', input: { a: 1 } }],
      stop_reason: 'tool_use',
      usage: { input_tokens: 4, output_tokens: 4, cache_read_input_tokens: 6, cache_creation_input_tokens: 0 },
    });
  });
});

describe('native Messages', () => {
  it('passes every event through with its name and reads usage from message_start and message_delta', () => {
    const events = fixtureEvents('anthropic/__fixtures__/anthropic-text.chunks.txt').map((event) => ({ event: (JSON.parse(event.data) as { type: string }).type, data: event.data }));
    const stream = new NativeMessagesStream();
    const out = events.flatMap((event) => stream.onEvent(event));
    expect(out).toEqual(events);
    expect(stream.finished).toBe(true);
    expect(stream.usageComplete).toBe(true);
    expect(stream.usage).toEqual({ promptTokens: 21 + 1200 + 3400, completionTokens: 9, cachedPromptTokens: 3400, cacheWriteTokens: 1200 });
    expect(stream.deliveredText).toBe('Paris is the capital of France.');
    const delta = events.find((event) => event.event === 'message_delta')!;
    const patched = messagesFormat.withCost(delta, { cost: '0.01', budgetRemaining: null }) as { data: string };
    expect(JSON.parse(patched.data).usage).toMatchObject({ output_tokens: 9, cost: 0.01 });
    expect(messagesFormat.withCost(events[0]!, { cost: '0.01', budgetRemaining: null })).toBeNull();
  });

  it.each([
    [402, 'billing_error'],
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [429, 'rate_limit_error'],
    [404, 'not_found_error'],
    [502, 'api_error'],
  ])('answers status %i with error type %s', (status, type) => {
    expect(anthropicErrorBody(new GatewayError('internal_error', 'm', null, {}, status))).toEqual({ type: 'error', error: { type, message: 'm' } });
  });
});
