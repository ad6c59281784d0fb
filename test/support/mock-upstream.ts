/**
 * A real HTTP server speaking the OpenAI API, started by tests as the provider behind
 * Tollgate. Deterministic usage (prompt tokens = characters of the prompt / 4, rounded up;
 * completion tokens = words of the reply) and switchable failure modes. Like OpenAI, it sends
 * the usage chunk of a stream only when `stream_options.include_usage` is set. It also serves
 * `POST /responses` (OpenAI's Responses API, JSON and SSE), and records every request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeUpstreamServer } from './fake-upstream';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | null;
}

export interface MockBehavior {
  /** normal | error (status + JSON error) | reset-mid-stream (destroys the socket after 2 chunks) | hang */
  mode: 'normal' | 'error' | 'reset-mid-stream' | 'hang';
  status: number;
  reply: string;
  chunkDelayMs: number;
  latencyMs: number;
  cachedTokens: number;
  /** Stream mode: after this many content chunks, wait for `resume()` (holds the stream open). */
  pauseAfterChunks?: number;
  /** Stream mode: ignore `stream_options.include_usage` (servers that never report stream usage). */
  neverSendUsage?: boolean;
  /** JSON mode: answer indented JSON with an extra field, to see the bytes pass through untouched. */
  prettyJson?: boolean;
  /** Answer with this function call instead of text (chat and Responses); 12 completion tokens. */
  toolCall?: { name: string; arguments: string };
}

/** Completion tokens reported for a tool call answer. */
export const TOOL_CALL_TOKENS = 12;

const DEFAULT_BEHAVIOR: MockBehavior = { mode: 'normal', status: 500, reply: 'Hello from the mock upstream, one two three four five six seven eight.', chunkDelayMs: 0, latencyMs: 0, cachedTokens: 0 };

export function promptTokensOf(body: Record<string, unknown>): number {
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  const chars = messages.reduce((sum, m) => sum + (typeof m.content === 'string' ? m.content.length : 0), 0);
  return Math.max(1, Math.ceil(chars / 4));
}

function itemText(item: unknown): string {
  if (typeof item === 'string') return item;
  const i = (item ?? {}) as { content?: unknown; output?: unknown; arguments?: unknown };
  if (typeof i.content === 'string') return i.content;
  if (Array.isArray(i.content)) return i.content.map((part) => (typeof (part as { text?: unknown })?.text === 'string' ? (part as { text: string }).text : '')).join('');
  if (typeof i.output === 'string') return i.output;
  return typeof i.arguments === 'string' ? i.arguments : '';
}

/** Input tokens of a Responses request: characters of instructions and input / 4, rounded up. */
export function responsesInputTokensOf(body: Record<string, unknown>): number {
  const input = body.input;
  const chars = (typeof body.instructions === 'string' ? body.instructions.length : 0) + (Array.isArray(input) ? input.map(itemText).join('').length : itemText(input).length);
  return Math.max(1, Math.ceil(chars / 4));
}

export class MockUpstream extends FakeUpstreamServer {
  readonly requests: RecordedRequest[] = [];
  behavior: MockBehavior = { ...DEFAULT_BEHAVIOR };
  /** Streams whose client (Tollgate) went away before the end. */
  abortedStreams = 0;
  /** Streams sent to the end. */
  completedStreams = 0;

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  reset(): void {
    this.requests.length = 0;
    this.behavior = { ...DEFAULT_BEHAVIOR };
    this.abortedStreams = 0;
    this.completedStreams = 0;
    this.resume();
  }

  private responses(body: Record<string, unknown>, response: ServerResponse): Promise<void> {
    return responsesAnswer.call(this, body, response);
  }

  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : null;
    this.requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body });
    const b = this.behavior;
    if (b.latencyMs) await sleep(b.latencyMs);
    if (b.mode === 'hang') return; // never answers
    if (b.mode === 'error') {
      response.writeHead(b.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { message: `mock upstream failure ${b.status}`, type: 'server_error' } }));
      return;
    }
    if (new URL(request.url ?? '/', 'http://upstream').pathname.endsWith('/responses')) return this.responses(body ?? {}, response);
    if (new URL(request.url ?? '/', 'http://upstream').pathname.endsWith('/embeddings')) {
      const input = body?.input;
      const inputs = Array.isArray(input) ? input : [input];
      const tokens = inputs.reduce<number>((sum, item) => sum + Math.ceil(String(item).length / 4), 0);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ object: 'list', model: body?.model, data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] })), usage: { prompt_tokens: tokens, total_tokens: tokens } }));
      return;
    }
    const promptTokens = promptTokensOf(body ?? {});
    const words = b.reply.split(' ');
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: b.toolCall ? TOOL_CALL_TOKENS : words.length,
      total_tokens: promptTokens + words.length,
      prompt_tokens_details: { cached_tokens: b.cachedTokens },
    };
    const id = `chatcmpl-upstream-${this.requests.length}`;
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const toolCalls = b.toolCall ? [{ id: 'call_mock01', type: 'function', function: { name: b.toolCall.name, arguments: b.toolCall.arguments } }] : undefined;
    if (!body?.stream) {
      response.writeHead(200, { 'content-type': 'application/json' });
      const message = toolCalls ? { role: 'assistant', content: null, tool_calls: toolCalls } : { role: 'assistant', content: b.reply };
      const completion = { id, object: 'chat.completion', created: 1, model: body?.model, choices: [{ index: 0, message, finish_reason: toolCalls ? 'tool_calls' : 'stop' }], usage };
      response.end(b.prettyJson ? JSON.stringify({ ...completion, system_fingerprint: 'fp_mock' }, null, 2) : JSON.stringify(completion));
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    let finished = false;
    response.on('close', () => {
      if (!finished) this.abortedStreams++;
    });
    const send = (payload: unknown) => response.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] });
    send(chunk({ role: 'assistant', content: '' }, null));
    if (b.toolCall) {
      const args = b.toolCall.arguments;
      send(chunk({ tool_calls: [{ index: 0, id: 'call_mock01', type: 'function', function: { name: b.toolCall.name, arguments: '' } }] }, null));
      for (const part of [args.slice(0, 4), args.slice(4)]) send(chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }, null));
      send(chunk({}, 'tool_calls'));
      if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage) send({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices: [], usage });
      send('[DONE]');
      finished = true;
      this.completedStreams++;
      response.end();
      return;
    }
    if (b.pauseAfterChunks === 0) {
      await new Promise<void>((resolve) => this.resumeWaiters.push(resolve));
      if (response.destroyed) return;
    }
    for (let i = 0; i < words.length; i++) {
      if (response.destroyed) return;
      if (b.chunkDelayMs) await sleep(b.chunkDelayMs);
      if (response.destroyed) return;
      send(chunk({ content: (i ? ' ' : '') + words[i] }, null));
      if (b.mode === 'reset-mid-stream' && i === 1) {
        // Let the two chunks reach the wire first (an SSE comment's write callback fires once
        // everything before it is flushed), as in a real reset mid-stream.
        await new Promise<void>((resolve) => response.write(': flush\n\n', () => resolve()));
        response.socket?.destroy();
        return;
      }
      if (b.pauseAfterChunks !== undefined && i + 1 === b.pauseAfterChunks) {
        await new Promise<void>((resolve) => this.resumeWaiters.push(resolve));
        if (response.destroyed) return;
      }
    }
    send(chunk({}, 'stop'));
    if (!b.neverSendUsage && (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage) send({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices: [], usage });
    send('[DONE]');
    finished = true;
    this.completedStreams++;
    response.end();
  }
}

/** `POST /responses`, shaped like OpenAI's: the response object, or its SSE events. */
async function responsesAnswer(this: MockUpstream, body: Record<string, unknown>, response: ServerResponse): Promise<void> {
  const b = this.behavior;
  const n = this.requests.length;
  const words = b.reply.split(' ');
  const inputTokens = responsesInputTokensOf(body);
  const outputTokens = b.toolCall ? TOOL_CALL_TOKENS : words.length;
  const usage = { input_tokens: inputTokens, input_tokens_details: { cached_tokens: b.cachedTokens }, output_tokens: outputTokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inputTokens + outputTokens };
  const item = b.toolCall
    ? { type: 'function_call', id: `fc_upstream_${n}`, call_id: 'call_mock01', name: b.toolCall.name, arguments: b.toolCall.arguments, status: 'completed' }
    : { type: 'message', id: `msg_upstream_${n}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: b.reply, annotations: [] }] };
  const base = { id: `resp_upstream_${n}`, object: 'response', created_at: 1, model: body.model, previous_response_id: body.previous_response_id ?? null, metadata: body.metadata ?? {}, error: null, incomplete_details: null };
  if (!body.stream) {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ ...base, status: 'completed', output: [item], usage }));
    return;
  }
  response.writeHead(200, { 'content-type': 'text/event-stream' });
  let sequence = 0;
  const send = (type: string, fields: Record<string, unknown>) => response.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`);
  send('response.created', { response: { ...base, status: 'in_progress', output: [], usage: null } });
  send('response.in_progress', { response: { ...base, status: 'in_progress', output: [], usage: null } });
  if (b.toolCall) {
    send('response.output_item.added', { output_index: 0, item: { ...item, arguments: '', status: 'in_progress' } });
    send('response.function_call_arguments.delta', { item_id: item.id, output_index: 0, delta: b.toolCall.arguments });
    send('response.function_call_arguments.done', { item_id: item.id, output_index: 0, arguments: b.toolCall.arguments });
  } else {
    send('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } });
    send('response.content_part.added', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    for (let i = 0; i < words.length; i++) {
      send('response.output_text.delta', { item_id: item.id, output_index: 0, content_index: 0, delta: (i ? ' ' : '') + words[i], logprobs: [] });
      if (b.mode === 'reset-mid-stream' && i === 1) {
        await new Promise<void>((resolve) => response.write(': flush\n\n', () => resolve()));
        response.socket?.destroy();
        return;
      }
    }
    send('response.output_text.done', { item_id: item.id, output_index: 0, content_index: 0, text: b.reply, logprobs: [] });
    send('response.content_part.done', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text: b.reply, annotations: [] } });
  }
  send('response.output_item.done', { output_index: 0, item });
  send('response.completed', { response: { ...base, status: 'completed', output: [item], usage } });
  this.completedStreams++;
  response.end();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
