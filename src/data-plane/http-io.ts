/**
 * @module Small node:http helpers for the data plane: bounded JSON body reading with clear
 * 4xx errors, JSON and error responses in the OpenAI envelope.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../shared/errors';

/** The parsed body and its size in bytes (an upper bound of the tokens any text in it can make). */
export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<{ value: unknown; bytes: number }> {
  const type = request.headers['content-type'];
  if (type && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new GatewayError('unsupported_media_type', `Content-Type must be application/json, got "${type}".`, null);
  }
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    throw new GatewayError('payload_too_large', `Request body is ${declared} bytes; the limit is ${maxBytes}.`, null);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      request.resume();
      throw new GatewayError('payload_too_large', `Request body exceeds the limit of ${maxBytes} bytes.`, null);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw new GatewayError('invalid_json', 'Request body is empty; expected a JSON object.', null);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new GatewayError('invalid_json', `Request body is not valid JSON: ${(error as Error).message}`, null);
  }
  // Parsing megabytes takes a while: let other requests run before this one carries on.
  if (size > LARGE_BODY_BYTES) await new Promise((resolve) => setImmediate(resolve));
  return { value: parsed, bytes: size };
}

/** Above this, the work on a body is split at event-loop turns. */
const LARGE_BODY_BYTES = 256 * 1024;

/** JSON text that is sent as it is (an upstream body passed through untouched). */
export class RawJson {
  constructor(readonly text: string) {}
}

export function rawJson(text: string): RawJson {
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
