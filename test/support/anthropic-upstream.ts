/**
 * A real HTTP server speaking Anthropic's Messages API (`POST /v1/messages`), shaped like the
 * API that `@anthropic-ai/sdk` talks to: the same JSON message, the same named SSE events
 * (message_start, content_block_start/delta/stop, ping, message_delta, message_stop, error),
 * the same error envelope. Usage is deterministic: input tokens = characters of the prompt / 4
 * (rounded up), output tokens = words of the reply; cache reads/writes are configurable.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeUpstreamServer } from './fake-upstream';

export interface AnthropicRecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface AnthropicBehavior {
  mode: 'normal' | 'error' | 'error-event-mid-stream';
  status: number;
  errorType: string;
  reply: string;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Of the cache writes, those with a 1-hour lifetime (reported under cache_creation). */
  cacheWrite1hTokens?: number;
  /** After this many text deltas, wait for `resume()`. */
  pauseAfterDeltas?: number;
  /** Answer with a tool call instead of text. */
  toolCall?: { name: string; input: Record<string, unknown> };
}

const DEFAULT_BEHAVIOR: AnthropicBehavior = {
  mode: 'normal',
  status: 400,
  errorType: 'invalid_request_error',
  reply: 'Hello from the Anthropic mock, one two three four five six seven.',
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
};

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((block) => (typeof block?.text === 'string' ? block.text : typeof block?.content === 'string' ? block.content : '')).join('');
  return '';
}

/** Input tokens Anthropic would report: the uncached part of the prompt. */
export function anthropicInputTokensOf(body: Record<string, unknown>): number {
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  const chars = textOf(body.system).length + messages.reduce((sum, message) => sum + textOf(message.content).length, 0);
  return Math.max(1, Math.ceil(chars / 4));
}

export class AnthropicUpstream extends FakeUpstreamServer {
  readonly requests: AnthropicRecordedRequest[] = [];
  behavior: AnthropicBehavior = { ...DEFAULT_BEHAVIOR };
  abortedStreams = 0;

  /** What goes in `api_base` (Anthropic's SDK and LiteLLM both take the host without /v1). */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  reset(): void {
    this.requests.length = 0;
    this.behavior = { ...DEFAULT_BEHAVIOR };
    this.abortedStreams = 0;
    this.resume();
  }

  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    this.requests.push({ path: request.url ?? '', headers: request.headers, body });
    const b = this.behavior;
    if (request.method === 'POST' && request.url === '/v1/messages/count_tokens') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ input_tokens: anthropicInputTokensOf(body) }));
      return;
    }
    if (request.method !== 'POST' || request.url !== '/v1/messages') return this.error(response, 404, 'not_found_error', `Not found: ${request.method} ${request.url}`);
    // Anthropic takes the key as x-api-key (what Tollgate sends); @anthropic-ai/sdk 1.x sends a bearer token.
    if (!request.headers['x-api-key'] && !request.headers.authorization) return this.error(response, 401, 'authentication_error', 'x-api-key header is required');
    if (typeof body.max_tokens !== 'number') return this.error(response, 400, 'invalid_request_error', 'max_tokens: Field required');
    if (b.mode === 'error') return this.error(response, b.status, b.errorType, `mock anthropic failure ${b.status}`);

    const id = `msg_mock${String(this.requests.length).padStart(4, '0')}`;
    const usage = {
      input_tokens: anthropicInputTokensOf(body),
      cache_creation_input_tokens: b.cacheWriteTokens,
      cache_read_input_tokens: b.cacheReadTokens,
      cache_creation: { ephemeral_5m_input_tokens: b.cacheWriteTokens - (b.cacheWrite1hTokens ?? 0), ephemeral_1h_input_tokens: b.cacheWrite1hTokens ?? 0 },
      output_tokens: b.toolCall ? 12 : b.reply.split(' ').length,
      service_tier: 'standard',
    };
    const content = b.toolCall ? [{ type: 'tool_use', id: 'toolu_mock01', name: b.toolCall.name, input: b.toolCall.input }] : [{ type: 'text', text: b.reply }];
    const stopReason = b.toolCall ? 'tool_use' : 'end_turn';
    if (!body.stream) {
      response.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${id}` });
      response.end(JSON.stringify({ id, type: 'message', role: 'assistant', model: body.model, content, stop_reason: stopReason, stop_sequence: null, usage }));
      return;
    }

    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': `req_${id}` });
    let finished = false;
    response.on('close', () => {
      if (!finished) this.abortedStreams++;
    });
    const send = (type: string, data: Record<string, unknown>) => response.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    send('message_start', { message: { id, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } });
    if (b.toolCall) {
      send('content_block_start', { index: 0, content_block: { type: 'tool_use', id: 'toolu_mock01', name: b.toolCall.name, input: {} } });
      const json = JSON.stringify(b.toolCall.input);
      for (const part of [json.slice(0, 5), json.slice(5)]) send('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: part } });
    } else {
      send('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
      send('ping', {});
      const words = b.reply.split(' ');
      for (let i = 0; i < words.length; i++) {
        if (response.destroyed) return;
        send('content_block_delta', { index: 0, delta: { type: 'text_delta', text: (i ? ' ' : '') + words[i] } });
        if (b.mode === 'error-event-mid-stream' && i === 1) {
          send('error', { error: { type: 'overloaded_error', message: 'Overloaded' } });
          finished = true;
          response.end();
          return;
        }
        if (b.pauseAfterDeltas !== undefined && i + 1 === b.pauseAfterDeltas) {
          await new Promise<void>((resolve) => this.resumeWaiters.push(resolve));
          if (response.destroyed) return;
        }
      }
    }
    send('content_block_stop', { index: 0 });
    send('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } });
    send('message_stop', {});
    finished = true;
    response.end();
  }

  private error(response: ServerResponse, status: number, type: string, message: string): void {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ type: 'error', error: { type, message } }));
  }
}
