/**
 * @module The built-in mock model: an in-process OpenAI-compatible upstream. Deterministic:
 * the same prompt always gives the same text and usage (prompt tokens counted as OpenAI
 * would, completion tokens of the reply), so demos and tests need no API key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { countChatPromptTokensExact, countEmbeddingInputTokensExact, countTextTokens } from '../../pricing/tokens';
import type { OutboundRequest } from '../types';
import type { UpstreamResponse } from '../../data-plane/forwarder';

const encoder = new TextEncoder();

function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i] as { role?: unknown; content?: unknown };
    if (message?.role === 'user' && typeof message.content === 'string') return message.content;
  }
  return '';
}

export function mockReplyText(body: Record<string, unknown>, configured: string | undefined): string {
  let text = configured ?? `This is a mock response from Tollgate. You said: ${lastUserText(body.messages).slice(0, 200)}`;
  const limit = Number(body.max_completion_tokens ?? body.max_tokens);
  if (Number.isFinite(limit) && limit > 0) {
    const words = text.split(' ');
    while (words.length > 1 && countTextTokens(words.join(' ')) > limit) words.pop();
    text = words.join(' ');
  }
  return text;
}

function json(status: number, value: unknown): UpstreamResponse {
  const bytes = encoder.encode(JSON.stringify(value));
  return {
    status,
    headers: { 'content-type': 'application/json' },
    body: (async function* () {
      yield bytes;
    })(),
    destroy() {},
  };
}

export async function handleMockRequest(request: OutboundRequest, signal?: AbortSignal): Promise<UpstreamResponse> {
  const latencyMs = Number(request.headers['x-mock-latency-ms'] ?? 0);
  const configured = request.headers['x-mock-response'] ? decodeURIComponent(request.headers['x-mock-response']) : undefined;
  const sent = request.body instanceof Uint8Array ? Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength).toString('utf8') : request.body;
  const body = JSON.parse(sent ?? '{}') as Record<string, unknown>;
  if (latencyMs > 0) await sleep(latencyMs, undefined, { signal });
  const created = Math.floor(Date.now() / 1000);
  // Unique per request, like a provider's: clients and logs key on it.
  const id = `chatcmpl-mock-${randomBytes(8).toString('hex')}`;

  if (request.url.endsWith('/embeddings')) {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const promptTokens = await countEmbeddingInputTokensExact(body.input);
    return json(200, {
      object: 'list',
      model: body.model,
      data: inputs.map((input, index) => ({ object: 'embedding', index, embedding: pseudoEmbedding(JSON.stringify(input)) })),
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  }

  const text = mockReplyText(body, configured);
  const usage = {
    prompt_tokens: await countChatPromptTokensExact(body.messages),
    completion_tokens: countTextTokens(text),
    total_tokens: 0,
  };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;

  if (!body.stream) {
    return json(200, {
      id,
      object: 'chat.completion',
      created,
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }],
      usage,
    });
  }

  const wantsUsage = Boolean((body.stream_options as { include_usage?: unknown } | undefined)?.include_usage);
  const pieces = text.match(/\S+\s*/g) ?? [text];
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const interChunkDelayMs = Math.min(latencyMs, 20);
  return {
    status: 200,
    headers: { 'content-type': 'text/event-stream' },
    body: (async function* () {
      yield encoder.encode(chunk({ role: 'assistant', content: '' }, null));
      for (const piece of pieces) {
        if (signal?.aborted) return;
        if (interChunkDelayMs) await sleep(interChunkDelayMs, undefined, { signal });
        yield encoder.encode(chunk({ content: piece }, null));
      }
      yield encoder.encode(chunk({}, 'stop'));
      if (wantsUsage) yield encoder.encode(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage })}\n\n`);
      yield encoder.encode('data: [DONE]\n\n');
    })(),
    destroy() {},
  };
}

function pseudoEmbedding(text: string): number[] {
  const digest = createHash('sha256').update(text).digest();
  return Array.from({ length: 8 }, (_, i) => Number(((digest[i]! / 255) * 2 - 1).toFixed(6)));
}
