/** The anthropic/ mapping modules against recorded-format fixtures (see __fixtures__/README.md). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contextFor, fixtureEvents } from '../fixtures.test-support';
import { AnthropicStreamTranslator } from './anthropic-stream';
import { convertAnthropicResponse } from './convert-anthropic-response';
import { toAnthropicRequest } from './convert-to-anthropic-request';
import { anthropicMessagesUrl } from '.';
import { GatewayError } from '../../shared/errors';

const fixture = (name: string) => JSON.parse(readFileSync(join(__dirname, '__fixtures__', name), 'utf8'));

function requestFor(body: Record<string, unknown>, stream = false) {
  const context = contextFor('anthropic', false);
  return toAnthropicRequest({ ...context, stream, body: { model: 'm', ...body } });
}

describe('toAnthropicRequest', () => {
  it('moves system messages to `system`, merges roles, maps tools and defaults max_tokens to the deployment cap', () => {
    const request = requestFor({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: 'Answer in French.' },
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '18C' },
        { role: 'user', content: [{ type: 'text', text: 'And tomorrow?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object' } } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      stop: 'END',
      temperature: 0.2,
      frequency_penalty: 1,
      user: 'customer-1',
    });
    expect(request).toEqual({
      model: 'upstream-model',
      max_tokens: 100,
      system: 'Be brief.\n\nAnswer in French.',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'call_1', content: '18C' },
            { type: 'text', text: 'And tomorrow?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
          ],
        },
      ],
      tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object' } }],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
      stop_sequences: ['END'],
      temperature: 0.2,
      metadata: { user_id: 'customer-1' },
    });
  });

  it('keeps cache_control (prompt caching) and the client max_tokens, and sets stream', () => {
    const request = requestFor({ max_tokens: 7, messages: [{ role: 'system', content: [{ type: 'text', text: 'Long context', cache_control: { type: 'ephemeral' } }] }, { role: 'user', content: 'q' }] }, true);
    expect(request).toMatchObject({ max_tokens: 7, stream: true, system: [{ type: 'text', text: 'Long context', cache_control: { type: 'ephemeral' } }] });
  });

  it('rejects what Anthropic cannot do with a 400 naming the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ n: 2, messages: [{ role: 'user', content: 'x' }] }, 'n'],
      [{ messages: [{ role: 'user', content: [{ type: 'input_audio' }] }] }, 'messages[0].content[0]'],
      [{ messages: [{ role: 'assistant', tool_calls: [{ id: 'a', function: { name: 'f', arguments: '{bad' } }] }] }, 'messages[0].tool_calls[0].function.arguments'],
      [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    ];
    for (const [body, param] of cases) {
      const error = (() => {
        try {
          requestFor(body);
        } catch (caught) {
          return caught as GatewayError;
        }
        return null;
      })();
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ status: 400, param });
    }
  });

  it('builds the Messages URL with or without /v1 in api_base', () => {
    expect(anthropicMessagesUrl(undefined)).toBe('https://api.anthropic.com/v1/messages');
    expect(anthropicMessagesUrl('http://proxy.local/v1/')).toBe('http://proxy.local/v1/messages');
  });
});

describe('convertAnthropicResponse', () => {
  it('turns a Message into a chat.completion with the cache split in usage', () => {
    const { body, usage } = convertAnthropicResponse(fixture('anthropic-text.json'), 1_764_300_000);
    expect(body).toEqual({
      id: 'msg_01TollgateJson000000001',
      object: 'chat.completion',
      created: 1_764_300_000,
      model: 'claude-sonnet-4-5-20250929',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Paris is the capital of France.' }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 4621, completion_tokens: 9, total_tokens: 4630, prompt_tokens_details: { cached_tokens: 3400 }, cache_read_input_tokens: 3400, cache_creation_input_tokens: 1200 },
    });
    expect(usage).toEqual({ promptTokens: 4621, completionTokens: 9, cachedPromptTokens: 3400, cacheWriteTokens: 1200 });
  });
});

describe('AnthropicStreamTranslator', () => {
  it('streams text and a tool call as OpenAI deltas with finish_reason tool_calls', () => {
    const translator = new AnthropicStreamTranslator(contextFor('anthropic', false), 1);
    const chunks = fixtureEvents('anthropic/__fixtures__/anthropic-tool.chunks.txt').flatMap((event) => translator.onEvent(event)).map((payload) => JSON.parse(payload));
    expect(chunks[0]).toMatchObject({ id: 'msg_01TollgateTool000000001', model: 'claude-haiku-4-5-20251001', choices: [{ delta: { role: 'assistant', content: '' } }] });
    const toolDeltas = chunks.flatMap((chunk) => chunk.choices[0].delta.tool_calls ?? []);
    expect(toolDeltas[0]).toEqual({ index: 0, id: 'toolu_01TollgateWeather0001', type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(JSON.parse(toolDeltas.map((delta: { function: { arguments: string } }) => delta.function.arguments).join(''))).toEqual({ city: 'Paris' });
    expect(chunks.at(-1).choices[0].finish_reason).toBe('tool_calls');
    expect(translator.usage).toEqual({ promptTokens: 402, completionTokens: 41, cachedPromptTokens: 0, cacheWriteTokens: 0 });
  });

  it('translates an error event into an OpenAI error payload', () => {
    const translator = new AnthropicStreamTranslator(contextFor('anthropic', false), 1);
    const [payload] = translator.onEvent({ event: 'error', data: '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' });
    expect(JSON.parse(payload!)).toEqual({ error: { message: 'Overloaded', type: 'overloaded_error', param: null, code: 'overloaded_error' } });
    expect(translator.errored).toBe(true);
    expect(translator.finished).toBe(false);
  });
});
