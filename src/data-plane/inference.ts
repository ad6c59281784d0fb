/**
 * @module The inference routes, in request order: authenticate → parse → identify customer →
 * route model → authorize (internal resolver) → forward → stream/relay → settle → respond.
 * Settlement happens before the last byte leaves, so spend is visible (and journaled) as
 * soon as the client has the whole response.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deployment } from '../config/load';
import type { InternalResolver, Decision, Settlement } from '../governance/resolver';
import type { Registry } from '../governance/registry';
import type { Principal } from '../governance/records';
import { countChatPromptTokens, countEmbeddingInputTokens, countTextTokens } from '../pricing/tokens';
import type { TokenUsage } from '../pricing/prices';
import { adapterFor } from '../providers/registry';
import type { ChatContext, ProviderAdapter, StreamTranslator, UpstreamRequest } from '../providers/types';
import type { CostSource } from '../ledger/types';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString } from '../shared/money';
import type { Logger } from '../observability/logger';
import type { RefusalSink } from '../activity/refusals';
import type { GatewayMetrics } from '../observability/metrics';
import { extractCustomerId } from './customer-id';
import type { Forwarder, UpstreamResponse } from './forwarder';
import { bearerToken, rawJson, readJsonBody, sendError, sendJson } from './http-io';
import type { ModelRouter } from './model-router';
import { SseParser } from './sse';
import { isConnectionRefused, upstreamFailure, upstreamHttpError } from './upstream-errors';

export interface InferenceDependencies {
  registry: Registry;
  resolver: InternalResolver;
  router: ModelRouter;
  forwarder: Forwarder;
  logger: Logger;
  maxBodyBytes: number;
  metrics?: Pick<GatewayMetrics, 'requestFinished'>;
  refusals?: RefusalSink;
}

const COST_HEADER = 'x-litellm-response-cost';

/** Builds, for one deployment, the provider context, its adapter and the upstream request. */
type BuildUpstreamRequest<C> = (deployment: Deployment) => { context: C; adapter: ProviderAdapter; request: UpstreamRequest };
/** An upstream response together with what produced it. */
type Sent<C> = { upstream: UpstreamResponse; context: C; adapter: ProviderAdapter };

interface Prepared {
  requestId: string;
  principal: Principal;
  body: Record<string, unknown>;
  model: string;
  customerId: string | null;
}

export class InferenceHandler {
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly deps: InferenceDependencies) {}

  /** Requests currently being served (graceful stop waits for zero). */
  get activeRequests(): number {
    return this.inFlight;
  }

  waitForDrain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  async handle(kind: 'chat' | 'embeddings', request: IncomingMessage, response: ServerResponse): Promise<void> {
    this.inFlight++;
    const started = performance.now();
    const requestId = randomUUID();
    response.setHeader('x-request-id', requestId);
    let model: string | null = null;
    try {
      const prepared = await this.prepare(requestId, request);
      model = prepared.model;
      if (kind === 'chat') await this.chat(prepared, response);
      else await this.embeddings(prepared, response);
    } catch (error) {
      if (response.destroyed) return; // the client left: nobody to tell
      if (error instanceof GatewayError) sendError(response, error);
      else {
        this.deps.logger.error({ err: error, requestId }, 'inference request failed');
        sendError(response, new GatewayError('internal_error', `Internal error while serving request ${requestId}.`));
      }
    } finally {
      if (--this.inFlight === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
      // 499 (nginx's "client closed request") when the client left before the last byte.
      const status = response.writableEnded ? response.statusCode : 499;
      this.deps.metrics?.requestFinished(kind, model, status, (performance.now() - started) / 1000);
    }
  }

  listModels(request: IncomingMessage, response: ServerResponse): void {
    if (!this.deps.registry.authenticate(bearerToken(request))) {
      sendError(response, unauthorized());
      return;
    }
    sendJson(response, 200, {
      object: 'list',
      data: this.deps.router.modelNames.map((id) => ({ id, object: 'model', created: 0, owned_by: 'tollgate' })),
    });
  }

  private async prepare(requestId: string, request: IncomingMessage): Promise<Prepared> {
    await this.deps.registry.refreshed(); // a key another process just revoked is gone here too
    const principal = this.deps.registry.authenticate(bearerToken(request));
    if (!principal) {
      request.resume();
      throw unauthorized();
    }
    const parsed = await readJsonBody(request, this.deps.maxBodyBytes);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new GatewayError('invalid_request', 'Request body must be a JSON object.', null);
    }
    const body = parsed as Record<string, unknown>;
    if (typeof body.model !== 'string' || !body.model) throw new GatewayError('invalid_request', '"model" is required and must be a string.', 'model');
    if (!this.deps.router.has(body.model)) {
      throw new GatewayError('model_not_found', `Model "${body.model}" is not served by this gateway. Available: ${this.deps.router.modelNames.join(', ')}.`, 'model');
    }
    const customerId = extractCustomerId(request.headers, body);
    return { requestId, principal, body, model: body.model, customerId };
  }

  private async authorizeFor(prepared: Prepared, deployment: Deployment, endpoint: 'chat' | 'embeddings', promptTokens: number, maxCompletionTokens: number, requestedMaxTokens: number | null): Promise<Decision> {
    const authorization = await this.deps.resolver.authorize({
      requestId: prepared.requestId,
      principal: prepared.principal,
      customerId: prepared.customerId,
      model: prepared.model,
      deployment,
      endpoint,
      promptTokens,
      maxCompletionTokens,
      requestedMaxTokens,
    });
    if (!authorization.ok) {
      this.deps.refusals?.record(prepared.customerId, prepared.model, authorization.error);
      throw authorization.error;
    }
    return authorization.decision;
  }

  private async chat(prepared: Prepared, response: ServerResponse): Promise<void> {
    const { body } = prepared;
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      throw new GatewayError('invalid_request', '"messages" is required and must be a non-empty array.', 'messages');
    }
    const malformed = body.messages.findIndex((message) => !message || typeof message !== 'object' || Array.isArray(message) || typeof (message as { role?: unknown }).role !== 'string');
    if (malformed >= 0) {
      throw new GatewayError('invalid_request', `"messages[${malformed}]" must be an object with a string "role".`, `messages[${malformed}]`);
    }
    if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw new GatewayError('invalid_request', '"stream" must be a boolean.', 'stream');
    if (body.stream_options !== undefined && body.stream_options !== null && (typeof body.stream_options !== 'object' || Array.isArray(body.stream_options))) {
      throw new GatewayError('invalid_request', '"stream_options" must be an object.', 'stream_options');
    }
    const requestedMax = body.max_completion_tokens ?? body.max_tokens;
    if (requestedMax !== undefined && requestedMax !== null && (!Number.isInteger(requestedMax) || (requestedMax as number) < 0)) {
      throw new GatewayError('invalid_request', '"max_tokens" / "max_completion_tokens" must be a non-negative integer.', body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens');
    }
    const stream = body.stream === true;
    const candidates = this.deps.router.candidates(prepared.model);
    const first = candidates[0]!;
    const promptTokens = countChatPromptTokens(body.messages);
    const maxCompletionTokens = typeof requestedMax === 'number' ? requestedMax : first.maxOutputTokens;
    const decision = await this.authorizeFor(prepared, first, 'chat', promptTokens, maxCompletionTokens, typeof requestedMax === 'number' ? requestedMax : null);
    const clientWantsUsage = Boolean((body.stream_options as { include_usage?: unknown } | undefined)?.include_usage);

    // A stream is cancelled upstream when its client leaves: nothing more can be delivered and
    // the provider stops generating (we bill what was delivered). A non-streamed answer is read
    // to the end even then, so the provider's exact usage is billed: it bills us either way.
    const abort = new AbortController();
    if (stream) {
      response.on('close', () => {
        if (!response.writableFinished) abort.abort();
      });
    }
    const { upstream, context, adapter } = await this.forward(candidates, decision, (deployment) => {
      const ctx: ChatContext = { deployment, body, stream, clientWantsUsage };
      const a = adapterFor(deployment.provider);
      return { context: ctx, adapter: a, request: a.buildChatRequest(ctx) };
    }, abort.signal);
    if (stream) await this.relayStream(prepared, decision, upstream, context, adapter, response, promptTokens);
    else await this.relayJson(decision, upstream, context, adapter, response, promptTokens);
  }

  private async relayJson(decision: Decision, upstream: UpstreamResponse, context: ChatContext, adapter: ProviderAdapter, response: ServerResponse, promptTokens: number): Promise<void> {
    const { json, text } = await this.readUpstreamJson(decision, upstream, context.deployment);
    const parsed = adapter.parseChatResponse(json, context);
    let usage = parsed.usage;
    let source: CostSource = 'provider';
    if (!usage) {
      usage = { promptTokens, completionTokens: countTextTokens(completionTextOf(parsed.body)) };
      source = 'computed';
    }
    // The client may have left while the provider was still answering: billed all the same.
    const settlement = await this.deps.resolver.settle(decision, usage, source, response.destroyed ? 'partial' : 'success');
    if (response.destroyed) return;
    sendJson(response, 200, parsed.body === json ? rawJson(text) : parsed.body, { ...decision.headers, [COST_HEADER]: picoToDecimalString(settlement.costPico) });
  }

  /**
   * Reads a whole upstream JSON body (parsed, and the text as received so a pass-through
   * provider's bytes reach the client unchanged); any failure releases the reservation.
   */
  private async readUpstreamJson(decision: Decision, upstream: UpstreamResponse, deployment: Deployment): Promise<{ json: unknown; text: string }> {
    let text: string;
    try {
      text = await readAll(upstream);
    } catch (error) {
      await this.deps.resolver.release(decision);
      throw upstreamFailure(error, deployment);
    }
    try {
      return { json: JSON.parse(text), text };
    } catch {
      await this.deps.resolver.release(decision);
      throw new GatewayError('upstream_error', `Upstream ${deployment.id} returned a body that is not JSON.`);
    }
  }

  /**
   * Relays a stream event by event: each upstream event is translated and written as soon as
   * it is complete, waiting only when the client reads slower than the provider writes.
   * However the stream ends, it is settled once, before the last byte: provider usage when
   * the provider reported it in full, counted text when the answer is complete without usage,
   * an estimate of what was delivered when it ended early.
   */
  private async relayStream(
    prepared: Prepared,
    decision: Decision,
    upstream: UpstreamResponse,
    context: ChatContext,
    adapter: ProviderAdapter,
    response: ServerResponse,
    promptTokens: number,
  ): Promise<void> {
    const translator = adapter.createStreamTranslator(context);
    const parser = new SseParser();
    response.writeHead(200, {
      ...decision.headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // The cost is known only at the end of a stream: it travels as an HTTP trailer.
      trailer: COST_HEADER,
    });
    response.flushHeaders();
    const write = (payloads: string[]): boolean => {
      let writable = true;
      for (const payload of payloads) writable = response.write(`data: ${payload}\n\n`);
      return writable;
    };
    let failure: GatewayError | null = null;
    let clientLeft: boolean;
    try {
      for await (const chunk of upstream.body) {
        if (response.destroyed) break;
        let writable = true;
        for (const event of parser.push(chunk)) writable = write(translator.onEvent(event)) && writable;
        if (!writable) await drained(response);
      }
      if (!response.destroyed) for (const event of parser.end()) write(translator.onEvent(event));
      clientLeft = response.destroyed;
    } catch (error) {
      clientLeft = response.destroyed || response.writableEnded;
      if (!clientLeft) failure = upstreamFailure(error, context.deployment);
    }
    if (clientLeft) {
      upstream.destroy();
      await this.settleStream(prepared, decision, translator, promptTokens, 'client disconnected');
      return;
    }
    if (!failure && !translator.finished && !translator.errored) {
      failure = new GatewayError('upstream_error', `Upstream ${context.deployment.id} closed the stream before it finished.`);
    }
    const why = failure?.message ?? (translator.errored ? 'upstream sent an error event' : null);
    const settlement = await this.settleStream(prepared, decision, translator, promptTokens, why);
    if (failure) write([JSON.stringify(failure.toEnvelope())]);
    else if (!translator.errored) write(translator.finish());
    response.addTrailers({ [COST_HEADER]: picoToDecimalString(settlement?.costPico ?? 0n) });
    response.end();
  }

  /** `why` is null for a stream that ended normally, else the reason it ended early. */
  private async settleStream(prepared: Prepared, decision: Decision, translator: StreamTranslator, promptTokens: number, why: string | null): Promise<Settlement | null> {
    const status = why ? 'partial' : 'success';
    const reported = translator.usage;
    if (reported && translator.usageComplete) return this.deps.resolver.settle(decision, reported, 'provider', status);
    const deliveredTokens = countTextTokens(translator.deliveredText);
    // The whole answer was delivered, the provider just did not count it: count it ourselves.
    if (translator.finished) return this.deps.resolver.settle(decision, { promptTokens, completionTokens: deliveredTokens }, 'computed', status);
    if (!reported && deliveredTokens === 0) {
      // Nothing was generated (or nothing reached us) and the provider reported no usage:
      // nothing is charged without usage, and the reservation is released.
      await this.deps.resolver.release(decision);
      this.deps.logger.warn({ requestId: prepared.requestId, why }, 'stream ended before any token; nothing charged');
      return null;
    }
    // Ended early: the provider's prompt count when it gave one (Anthropic does at the start),
    // and at least the tokens we delivered.
    const usage: TokenUsage = reported
      ? { ...reported, completionTokens: Math.max(reported.completionTokens, deliveredTokens) }
      : { promptTokens, completionTokens: deliveredTokens };
    const settlement = await this.deps.resolver.settle(decision, usage, 'estimated', 'partial');
    this.deps.logger.warn({ requestId: prepared.requestId, why, costPico: settlement.costPico.toString() }, 'stream ended early; charged what was delivered');
    return settlement;
  }

  private async embeddings(prepared: Prepared, response: ServerResponse): Promise<void> {
    const { body } = prepared;
    const input = body.input;
    const validInput = typeof input === 'string' || (Array.isArray(input) && input.length > 0);
    if (!validInput) throw new GatewayError('invalid_request', '"input" is required: a string or a non-empty array.', 'input');
    const candidates = this.deps.router.candidates(prepared.model);
    const promptTokens = countEmbeddingInputTokens(input);
    const decision = await this.authorizeFor(prepared, candidates[0]!, 'embeddings', promptTokens, 0, 0);
    // Like a non-streamed chat: read to the end even if the client leaves, and bill it.
    const neverAborted = new AbortController().signal;
    const { upstream, adapter, context } = await this.forward(candidates, decision, (d) => {
      const a = adapterFor(d.provider);
      return { context: { deployment: d, body }, adapter: a, request: a.buildEmbeddingsRequest({ deployment: d, body }) };
    }, neverAborted);
    const { deployment } = context;
    const { json, text } = await this.readUpstreamJson(decision, upstream, deployment);
    const parsed = adapter.parseEmbeddingsResponse(json, { deployment, body });
    const usage = parsed.usage ?? { promptTokens, completionTokens: 0 };
    const settlement = await this.deps.resolver.settle(decision, usage, parsed.usage ? 'provider' : 'computed', response.destroyed ? 'partial' : 'success');
    if (response.destroyed) return;
    sendJson(response, 200, parsed.body === json ? rawJson(text) : parsed.body, { ...decision.headers, [COST_HEADER]: picoToDecimalString(settlement.costPico) });
  }

  /**
   * Sends to the first deployment that accepts the connection. Only connection refusals fail
   * over: anything after the upstream has the request may have been billed there.
   */
  /**
   * Sends the request and hands back a successful upstream response. Whatever fails on the
   * way (no deployment reachable, an error status) releases the decision's reservations,
   * since nothing was generated, and becomes an OpenAI-shaped error.
   */
  private async forward<C extends { deployment: Deployment }>(
    candidates: Deployment[],
    decision: Decision,
    build: BuildUpstreamRequest<C>,
    signal: AbortSignal,
  ): Promise<Sent<C>> {
    let sent: Sent<C>;
    try {
      sent = await this.sendWithFailover(candidates, decision, build, signal);
    } catch (error) {
      await this.deps.resolver.release(decision);
      throw error;
    }
    const { upstream, adapter, context } = sent;
    if (upstream.status >= 400) {
      const text = await readAll(upstream).catch(() => '');
      await this.deps.resolver.release(decision);
      throw upstreamHttpError(upstream.status, adapter.errorMessage(upstream.status, text), context.deployment, upstream.headers);
    }
    return sent;
  }

  private async sendWithFailover<C extends { deployment: Deployment }>(
    candidates: Deployment[],
    decision: Decision,
    build: BuildUpstreamRequest<C>,
    signal: AbortSignal,
  ): Promise<Sent<C>> {
    let lastError: unknown;
    for (const deployment of candidates) {
      const { context, adapter, request } = build(deployment);
      try {
        const upstream = await this.deps.forwarder.send(request, { signal, timeoutMs: deployment.timeoutMs });
        // Bill at the prices of the deployment that actually served the request.
        decision.request.deployment = deployment;
        return { upstream, context, adapter };
      } catch (error) {
        lastError = error;
        if (!isConnectionRefused(error) || signal.aborted) break;
        this.deps.logger.warn({ deployment: deployment.id, err: (error as Error).message }, 'deployment refused the connection; trying the next');
      }
    }
    throw upstreamFailure(lastError, candidates[candidates.length - 1]!);
  }
}

function unauthorized(): GatewayError {
  return new GatewayError('unauthorized', 'Authentication failed: pass a valid key as "Authorization: Bearer <key>".', null);
}

/** Resolves when the client can take more data, or has gone. */
function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

async function readAll(upstream: UpstreamResponse): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of upstream.body) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

function completionTextOf(body: unknown): string {
  const choices = (body as { choices?: { message?: { content?: unknown } }[] } | null)?.choices ?? [];
  return choices.map((choice) => (typeof choice.message?.content === 'string' ? choice.message.content : '')).join('');
}
