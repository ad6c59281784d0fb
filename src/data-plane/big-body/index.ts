/**
 * @module Big request bodies, off the main thread. A body above BIG_BODY_BYTES on a chat or
 * Messages route is written once into a SharedArrayBuffer as it arrives and handed to a small
 * piscina pool: the worker parses it, runs the format's validation, estimate and translation,
 * and serialises the upstream body, which comes back by transfer. The main thread only ever
 * sees the body's head (its small top-level values: model, customer fields, caps, flags), so
 * a 9 MB chat costs the other requests no more than a memcpy. The exact prompt count (billing
 * without provider usage) and a big upstream answer's parse run in the same pool.
 */
import { existsSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Piscina } from 'piscina';
import type { Deployment } from '../../config/load';
import type { TokenUsage } from '../../pricing/prices';
import { countTextTokensExact } from '../../pricing/tokens';
import type { OutboundRequest } from '../../providers/types';
import { GatewayError } from '../../shared/errors';
import type { ApiFormat, Exchange, FormatRequestContext, ParsedRequest } from '../api-formats/types';
import type { UpstreamResponse } from '../forwarder';
import { parseJsonBody, rawJson, readBodyBytes, type RawJson } from '../http-io';
import type { AnswerResult, AnswerTask, BigBodyRoute, BodyRef, CountTask, ErrorData, Head, PrepareResult, PrepareTask } from './protocol';

/** Above this (JSON.parse of it is ~1 ms), a body's CPU work moves to the body workers. */
export const BIG_BODY_BYTES = 256 * 1024;

/** Big bodies waiting for a worker beyond this are refused (503) instead of piling up in memory. */
const MAX_QUEUED = 64;

export function isBigBodyRoute(endpoint: string): endpoint is BigBodyRoute {
  return endpoint === 'chat' || endpoint === 'messages';
}

function gatewayError(data: ErrorData): GatewayError {
  return new GatewayError(data.code, data.message, data.param, data.headers, data.status);
}

/** The pool, started on the first big body (most gateways never see one). */
export class BodyWorkers {
  private pool: Piscina | null = null;
  private readonly filename = join(__dirname, 'worker.js');
  /** False where the worker is not built (TypeScript run from source): big bodies are then parsed in place. */
  readonly available = existsSync(this.filename);

  async run<T>(task: PrepareTask | CountTask | AnswerTask): Promise<T> {
    // Loaded with the first big body, not at start (the CLI and most gateways never need it).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    this.pool ??= new (require('piscina') as typeof import('piscina')).Piscina({
      filename: this.filename,
      minThreads: 0,
      // One core stays for the event loop; two workers at most on a 3+-core machine.
      maxThreads: Math.max(1, Math.min(2, availableParallelism() - 1)),
      idleTimeout: 60_000,
      maxQueue: MAX_QUEUED,
      // On a busy machine the kernel runs the event loop first: a big body waits, not the others.
      niceIncrement: 10,
    });
    try {
      return (await this.pool.run(task)) as T;
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      if (this.pool.queueSize >= MAX_QUEUED) throw new GatewayError('service_unavailable', `Too many large request bodies are being processed; retry shortly (bodies over ${BIG_BODY_BYTES} bytes queue for ${MAX_QUEUED} slots).`, null, { 'retry-after': '1' });
      throw error;
    }
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close({ force: true });
  }
}

/** A body read: parsed here (small), or prepared by a worker (big: `value` is its head). */
export interface ReadBody {
  value: unknown;
  bytes: number;
  big: BigBody | null;
}

/**
 * Reads a request body (415 / 413 / 400 as before). A big one on a chat or Messages route
 * goes to the workers, prepared for the deployments the router would pick first.
 */
export async function readRequestBody(request: IncomingMessage, maxBytes: number, endpoint: string, workers: BodyWorkers, firstDeployments: () => Record<string, Deployment>): Promise<ReadBody> {
  const offThread = isBigBodyRoute(endpoint) && workers.available;
  const raw = await readBodyBytes(request, maxBytes, (size) => (offThread && size > BIG_BODY_BYTES ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size)));
  if (!offThread || raw.length <= BIG_BODY_BYTES) {
    const value = parseJsonBody(raw.toString('utf8'));
    // Parsing megabytes takes a while: let other requests run before this one carries on.
    if (raw.length > BIG_BODY_BYTES) await new Promise((resolve) => setImmediate(resolve));
    return { value, bytes: raw.length, big: null };
  }
  const ref: BodyRef = { bytes: raw.buffer as SharedArrayBuffer, length: raw.length };
  const headers = request.headers as Record<string, string | string[] | undefined>;
  const result = await workers.run<PrepareResult>({ op: 'prepare', route: endpoint as BigBodyRoute, headers, deployments: firstDeployments(), ...ref });
  if (!result.ok) throw gatewayError(result.error);
  return { value: result.head, bytes: raw.length, big: new BigBody(workers, endpoint as BigBodyRoute, ref, headers, result.head, result.prepared) };
}

type Built = Extract<NonNullable<Extract<PrepareResult, { ok: true }>['prepared']>, { ok: true }>;

/** What the answer gives the pipeline: its usage, or its exact completion count, and what to send. */
export interface BigAnswer {
  usage: TokenUsage | null;
  completionTokens: number;
  payload: RawJson | unknown;
}

/** A big body the main thread holds only as bytes and a head. */
export class BigBody {
  private readonly built = new Map<string, Built>();
  private readonly failed: ErrorData | null;

  constructor(
    private readonly workers: BodyWorkers,
    private readonly route: BigBodyRoute,
    private readonly ref: BodyRef,
    private readonly headers: Record<string, string | string[] | undefined>,
    readonly head: Head,
    prepared: Extract<PrepareResult, { ok: true }>['prepared'],
  ) {
    this.failed = prepared && !prepared.ok ? prepared.error : null;
    if (prepared?.ok) this.built.set(prepared.deploymentId, prepared);
  }

  /** The upstream request and format state for one deployment, prepared once. */
  private async buildFor(deployment: Deployment): Promise<Built> {
    const known = this.built.get(deployment.id);
    if (known) return known;
    const model = String(this.head.model);
    const result = await this.workers.run<PrepareResult>({ op: 'prepare', route: this.route, headers: this.headers, deployments: { [model]: deployment }, ...this.ref });
    if (!result.ok) throw gatewayError(result.error);
    if (!result.prepared) throw new GatewayError('internal_error', `The body worker prepared nothing for deployment ${deployment.id}.`);
    if (!result.prepared.ok) throw gatewayError(result.prepared.error);
    this.built.set(deployment.id, result.prepared);
    return result.prepared;
  }

  /** What the format's parse would give (its 400 if the body is invalid); state with big values emptied. */
  async parse(deployment: Deployment): Promise<ParsedRequest> {
    if (this.failed && !this.built.size) throw gatewayError(this.failed);
    return (await this.buildFor(deployment)).parsed;
  }

  /** The format's exchange over the head (for reading the answer), sending the worker's body. */
  async exchange(format: ApiFormat, context: FormatRequestContext, parsed: ParsedRequest, deployment: Deployment): Promise<Exchange> {
    const built = await this.buildFor(deployment);
    const exchange = format.exchange(context, { ...parsed, state: built.parsed.state }, deployment);
    const request: OutboundRequest = { ...built.request, body: built.body };
    return { ...exchange, request };
  }

  /** The exact prompt tokens, counted in a worker: for billing when the provider reports none. */
  countPromptTokens(): Promise<number> {
    return this.workers.run<number>({ op: 'count', route: this.route, ...this.ref });
  }

  /**
   * Reads a JSON answer. A small one is parsed here by the exchange; a big one in a worker,
   * which sends back only the usage (or the exact count of the text) and, when the client's
   * body is not the upstream's own, that body's bytes.
   */
  async readAnswer(upstream: UpstreamResponse, exchange: Exchange, parsed: ParsedRequest): Promise<BigAnswer> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of upstream.body) {
      chunks.push(chunk);
      size += chunk.length;
    }
    if (size <= BIG_BODY_BYTES) {
      const text = Buffer.concat(chunks, size).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new GatewayError('upstream_error', `Upstream ${exchange.deployment.id} returned a body that is not JSON.`);
      }
      const answer = exchange.parseJson(json);
      return { usage: answer.usage, completionTokens: answer.usage ? 0 : await countTextTokensExact(answer.outputText), payload: answer.passThrough ? rawJson(text) : answer.body };
    }
    const shared = Buffer.from(new SharedArrayBuffer(size));
    let at = 0;
    for (const chunk of chunks) {
      shared.set(chunk, at);
      at += chunk.length;
    }
    const task: AnswerTask = { op: 'answer', route: this.route, head: this.head, state: this.built.get(exchange.deployment.id)?.parsed.state ?? parsed.state, deployment: exchange.deployment, headers: this.headers, bytes: shared.buffer as SharedArrayBuffer, length: size };
    const result = await this.workers.run<AnswerResult>(task);
    if (!result.ok) throw gatewayError(result.error);
    return { usage: result.usage, completionTokens: result.completionTokens, payload: rawJson(result.body ?? shared) };
  }
}

