/**
 * @module The one small interface every upstream call goes through. undici's Agent (pooled,
 * keep-alive) for real upstreams (STACK.md §P5: ~30% faster than http-proxy, no crash on
 * upstream errors); `mock://` URLs are answered in-process by the mock model.
 */
import { Agent, request as undiciRequest } from 'undici';
import type { OutboundRequest } from '../providers/types';
import { handleMockRequest } from '../providers/mock/mock-upstream';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
  /** The whole body as text, if the transport reads it in one go (cheaper than iterating `body`). */
  text?(): Promise<string>;
  /** Stops reading and frees the connection (client left, or we are done). */
  destroy(): void;
  /** True when part of the body came with the headers (it is already buffered). */
  bodyArrived?(): boolean;
}

export interface ForwardOptions {
  /** Cancels the upstream request (a stream whose client left). Absent: never cancelled. */
  signal?: AbortSignal;
  /** Time allowed for the upstream's response headers and between body chunks. */
  timeoutMs: number;
}

export interface Forwarder {
  send(request: OutboundRequest, options: ForwardOptions): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export class UndiciForwarder implements Forwarder {
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, connections: 256, pipelining: 1 });

  async send(request: OutboundRequest, options: ForwardOptions): Promise<UpstreamResponse> {
    if (request.url.startsWith('mock://')) return handleMockRequest(request, options.signal);
    const response = await undiciRequest(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body ?? undefined,
      signal: options.signal,
      dispatcher: this.agent,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    const body = response.body;
    // An error event on a destroyed body must never become an uncaught exception.
    body.on('error', () => undefined);
    return {
      status: response.statusCode,
      headers: response.headers,
      body,
      text: () => body.text(),
      destroy: () => body.destroy(),
      bodyArrived: () => body.readableLength > 0,
    };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
