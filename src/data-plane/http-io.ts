/**
 * @module Small node:http helpers for the data plane: bounded JSON body reading with clear
 * 4xx errors, JSON and error responses in the OpenAI envelope.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../shared/errors';

/** The parsed body and its size in bytes (an upper bound of the tokens any text in it can make). */
export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<{ value: unknown; bytes: number }> {
  const raw = await readBodyBytes(request, maxBytes);
  const value = parseJsonBody(raw.toString('utf8'));
  // Parsing megabytes takes a while: let other requests run before this one carries on.
  if (raw.length > 256 * 1024) await new Promise((resolve) => setImmediate(resolve));
  return { value, bytes: raw.length };
}

/** The body's bytes, after the same content-type and size checks as readJsonBody. */
export async function readBodyBytes(request: IncomingMessage, maxBytes: number, into?: (size: number) => Buffer): Promise<Buffer> {
  const type = request.headers['content-type'];
  if (type && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new GatewayError('unsupported_media_type', `Content-Type must be application/json, got "${type}".`, null);
  }
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    throw new GatewayError('payload_too_large', `Request body is ${declared} bytes; the limit is ${maxBytes}.`, null);
  }
  // A big declared body is written into its final buffer chunk by chunk as it arrives
  // (Node's parser holds the body to its Content-Length), so no step copies it all at once.
  const target = into && Number.isFinite(declared) && declared > 0 ? into(declared) : null;
  const chunks: Buffer[] = [];
  let size = 0;
  let filled = 0; // bytes of target written
  let nextTurnAt = YIELD_EVERY_BYTES;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    if (size + chunk.length > maxBytes) {
      request.resume();
      throw new GatewayError('payload_too_large', `Request body exceeds the limit of ${maxBytes} bytes.`, null);
    }
    if (target && filled === size && size + chunk.length <= target.length) filled += chunk.copy(target, size);
    else chunks.push(chunk);
    size += chunk.length;
    // Chunks already buffered arrive without an event-loop turn between them: take one per MB.
    if (size >= nextTurnAt) {
      nextTurnAt += YIELD_EVERY_BYTES;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  if (target && filled === target.length && size === filled) return target;
  if (target) chunks.unshift(target.subarray(0, filled));
  if (!into) return Buffer.concat(chunks, size);
  const whole = into(size);
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(whole, at);
  return whole;
}

const YIELD_EVERY_BYTES = 1024 * 1024;

/** A request body's JSON, or the 400 that names what is wrong with it. */
export function parseJsonBody(text: string): unknown {
  if (!text.trim()) throw new GatewayError('invalid_json', 'Request body is empty; expected a JSON object.', null);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new GatewayError('invalid_json', `Request body is not valid JSON: ${(error as Error).message}`, null);
  }
}

/** JSON text that is sent as it is (an upstream body passed through untouched). */
export class RawJson {
  constructor(readonly text: string | Uint8Array) {}
}

export function rawJson(text: string | Uint8Array): RawJson {
  return new RawJson(text);
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = body instanceof RawJson ? body.text : JSON.stringify(body);
  response.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  response.end(payload);
}

export function sendError(response: ServerResponse, error: GatewayError, extraHeaders: Record<string, string> = {}): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendJson(response, error.status, error.toEnvelope(), { ...extraHeaders, ...error.headers });
}

export function bearerToken(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match ? match[1]!.trim() : null;
  }
  // Azure-style and Anthropic-style clients send the key in their own headers.
  const alternative = request.headers['api-key'] ?? request.headers['x-api-key'];
  return typeof alternative === 'string' ? alternative.trim() : null;
}
