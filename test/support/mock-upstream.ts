/**
 * A real HTTP server speaking the OpenAI API, started by tests as the provider behind
 * Tollgate. Deterministic usage (prompt tokens = characters of the prompt / 4, rounded up;
 * completion tokens = words of the reply) and switchable failure modes. Like OpenAI, it sends
 * the usage chunk of a stream only when `stream_options.include_usage` is set.
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
}

const DEFAULT_BEHAVIOR: MockBehavior = { mode: 'normal', status: 500, reply: 'Hello from the mock upstream, one two three four five six seven eight.', chunkDelayMs: 0, latencyMs: 0, cachedTokens: 0 };

export function promptTokensOf(body: Record<string, unknown>): number {
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  const chars = messages.reduce((sum, m) => sum + (typeof m.content === 'string' ? m.content.length : 0), 0);
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
      completion_tokens: words.length,
      total_tokens: promptTokens + words.length,
      prompt_tokens_details: { cached_tokens: b.cachedTokens },
    };
    const id = `chatcmpl-upstream-${this.requests.length}`;
    if (!body?.stream) {
      response.writeHead(200, { 'content-type': 'application/json' });
      const completion = { id, object: 'chat.completion', created: 1, model: body?.model, choices: [{ index: 0, message: { role: 'assistant', content: b.reply }, finish_reason: 'stop' }], usage };
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
