/**
 * @module The inference routes, in request order: authenticate → parse → identify customer →
 * route model → authorize (internal resolver) → forward → stream/relay → settle → respond.
 * Settlement happens before the last byte leaves, so spend is visible (and journaled) as
 * soon as the client has the whole response.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deployment } from '../config/load';
import type { InternalResolver, Decision } from '../governance/resolver';
import type { Registry } from '../governance/registry';
import type { Principal } from '../governance/records';
import { countChatPromptTokens, countEmbeddingInputTokens, countTextTokens } from '../pricing/tokens';
import type { TokenUsage } from '../pricing/prices';
import { adapterFor } from '../providers/registry';
import type { ChatContext, ProviderAdapter, UpstreamRequest } from '../providers/types';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString } from '../shared/money';
import type { Logger } from '../observability/logger';
import { extractCustomerId } from './customer-id';
import type { Forwarder, UpstreamResponse } from './forwarder';
import { bearerToken, readJsonBody, sendError, sendJson } from './http-io';
import type { ModelRouter } from './model-router';
import { SseParser } from './sse';

export interface InferenceDependencies {
  registry: Registry;
  resolver: InternalResolver;
  router: ModelRouter;
  forwarder: Forwarder;
  logger: Logger;
  maxBodyBytes: number;
}

const COST_HEADER = 'x-litellm-response-cost';

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
    const requestId = randomUUID();
    response.setHeader('x-request-id', requestId);
    try {
      const prepared = await this.prepare(requestId, request);
      if (kind === 'chat') await this.chat(prepared, request, response);
      else await this.embeddings(prepared, response);
    } catch (error) {
      if (error instanceof GatewayError) sendError(response, error);
      else {
        this.deps.logger.error({ err: error, requestId }, 'inference request failed');
        sendError(response, new GatewayError('internal_error', `Internal error while serving request ${requestId}.`));
      }
    } finally {
      if (--this.inFlight === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
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

  private authorizeFor(prepared: Prepared, deployment: Deployment, endpoint: 'chat' | 'embeddings', promptTokens: number, maxCompletionTokens: number, requestedMaxTokens: number | null): Decision {
    const authorization = this.deps.resolver.authorize({
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
    if (!authorization.ok) throw authorization.error;
    return authorization.decision;
  }

  private async chat(prepared: Prepared, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { body } = prepared;
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      throw new GatewayError('invalid_request', '"messages" is required and must be a non-empty array.', 'messages');
    }
    if (body.stream !== undefined && typeof body.stream !== 'boolean') throw new GatewayError('invalid_request', '"stream" must be a boolean.', 'stream');
    const requestedMax = body.max_completion_tokens ?? body.max_tokens;
    if (requestedMax !== undefined && requestedMax !== null && (!Number.isInteger(requestedMax) || (requestedMax as number) < 0)) {
      throw new GatewayError('invalid_request', '"max_tokens" / "max_completion_tokens" must be a non-negative integer.', body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens');
    }
    const stream = body.stream === true;
    const candidates = this.deps.router.candidates(prepared.model);
    const first = candidates[0]!;
    const promptTokens = countChatPromptTokens(body.messages);
    const maxCompletionTokens = typeof requestedMax === 'number' ? requestedMax : first.maxOutputTokens;
    const decision = this.authorizeFor(prepared, first, 'chat', promptTokens, maxCompletionTokens, typeof requestedMax === 'number' ? requestedMax : null);
    const clientWantsUsage = Boolean((body.stream_options as { include_usage?: unknown } | undefined)?.include_usage);

    const abort = new AbortController();
    const onClose = () => {
      if (!response.writableFinished) abort.abort();
    };
    response.on('close', onClose);
    let upstream: UpstreamResponse;
    let context: ChatContext;
    let adapter: ProviderAdapter;
    try {
      ({ upstream, context, adapter } = await this.sendWithFailover(candidates, decision, (deployment) => {
        const ctx: ChatContext = { deployment, body, stream, clientWantsUsage };
        const a = adapterFor(deployment.provider);
        return { context: ctx, adapter: a, request: a.buildChatRequest(ctx) };
      }, abort.signal));
    } catch (error) {
      this.deps.resolver.release(decision);
      throw error;
    }

    if (upstream.status >= 400) {
      const text = await readAll(upstream).catch(() => '');
      this.deps.resolver.release(decision);
      throw upstreamHttpError(upstream.status, adapter.errorMessage(upstream.status, text), context.deployment);
    }
    if (stream) await this.relayStream(prepared, decision, upstream, context, adapter, response, promptTokens);
    else await this.relayJson(decision, upstream, context, adapter, response, promptTokens);
  }

  private async relayJson(decision: Decision, upstream: UpstreamResponse, context: ChatContext, adapter: ProviderAdapter, response: ServerResponse, promptTokens: number): Promise<void> {
    let text: string;
    try {
      text = await readAll(upstream);
    } catch (error) {
      this.deps.resolver.release(decision);
      throw upstreamFailure(error, context.deployment);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.deps.resolver.release(decision);
      throw new GatewayError('upstream_error', `Upstream ${context.deployment.id} returned a body that is not JSON.`);
    }
    const parsed = adapter.parseChatResponse(json, context);
    let usage = parsed.usage;
    let source: 'provider' | 'computed' = 'provider';
    if (!usage) {
      usage = { promptTokens, completionTokens: countTextTokens(completionTextOf(parsed.body)) };
      source = 'computed';
    }
    const settlement = this.deps.resolver.settle(decision, usage, source);
    sendJson(response, 200, parsed.body, { ...decision.headers, [COST_HEADER]: picoToDecimalString(settlement.costPico) });
  }

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
    const write = (payloads: string[]) => {
      for (const payload of payloads) response.write(`data: ${payload}\n\n`);
    };
    const settleEstimated = (why: string) => {
      const usage: TokenUsage = translator.usage ?? { promptTokens, completionTokens: countTextTokens(translator.deliveredText) };
      const settlement = this.deps.resolver.settle(decision, usage, translator.usage ? 'provider' : 'estimated', 'partial');
      this.deps.logger.warn({ requestId: prepared.requestId, why, costPico: settlement.costPico.toString() }, 'stream ended early; charged what was delivered');
      return settlement;
    };
    try {
      for await (const chunk of upstream.body) {
        if (response.destroyed) break;
        for (const event of parser.push(chunk)) write(translator.onEvent(event));
      }
      for (const event of parser.end()) write(translator.onEvent(event));
    } catch (error) {
      if (response.destroyed || response.writableEnded) {
        settleEstimated('client disconnected');
        return;
      }
      const settlement = settleEstimated(`upstream failed mid-stream: ${(error as Error).message}`);
      const failure = upstreamFailure(error, context.deployment);
      response.write(`data: ${JSON.stringify(failure.toEnvelope())}\n\n`);
      response.addTrailers({ [COST_HEADER]: picoToDecimalString(settlement.costPico) });
      response.end();
      return;
    }
    if (response.destroyed) {
      upstream.destroy();
      settleEstimated('client disconnected');
      return;
    }
    let settlement;
    if (translator.usage) settlement = this.deps.resolver.settle(decision, translator.usage, 'provider');
    else if (translator.finished) {
      settlement = this.deps.resolver.settle(decision, { promptTokens, completionTokens: countTextTokens(translator.deliveredText) }, 'computed');
    } else settlement = settleEstimated('upstream closed the stream without finishing');
    write(translator.finish());
    response.addTrailers({ [COST_HEADER]: picoToDecimalString(settlement.costPico) });
    response.end();
  }

  private async embeddings(prepared: Prepared, response: ServerResponse): Promise<void> {
    const { body } = prepared;
    const input = body.input;
    const validInput = typeof input === 'string' || (Array.isArray(input) && input.length > 0);
    if (!validInput) throw new GatewayError('invalid_request', '"input" is required: a string or a non-empty array.', 'input');
    const candidates = this.deps.router.candidates(prepared.model);
    const promptTokens = countEmbeddingInputTokens(input);
    const decision = this.authorizeFor(prepared, candidates[0]!, 'embeddings', promptTokens, 0, 0);
    const abort = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) abort.abort();
    });
    let upstream: UpstreamResponse;
    let adapter: ProviderAdapter;
    let deployment: Deployment;
    try {
      const sent = await this.sendWithFailover(candidates, decision, (d) => {
        const a = adapterFor(d.provider);
        return { context: { deployment: d, body }, adapter: a, request: a.buildEmbeddingsRequest({ deployment: d, body }) };
      }, abort.signal);
      ({ upstream, adapter } = sent);
      deployment = sent.context.deployment;
    } catch (error) {
      this.deps.resolver.release(decision);
      throw error;
    }
    let text: string;
    try {
      text = await readAll(upstream);
    } catch (error) {
      this.deps.resolver.release(decision);
      throw upstreamFailure(error, deployment);
    }
    if (upstream.status >= 400) {
      this.deps.resolver.release(decision);
      throw upstreamHttpError(upstream.status, adapter.errorMessage(upstream.status, text), deployment);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.deps.resolver.release(decision);
      throw new GatewayError('upstream_error', `Upstream ${deployment.id} returned a body that is not JSON.`);
    }
    const parsed = adapter.parseEmbeddingsResponse(json, { deployment, body });
    const usage = parsed.usage ?? { promptTokens, completionTokens: 0 };
    const settlement = this.deps.resolver.settle(decision, usage, parsed.usage ? 'provider' : 'computed');
    sendJson(response, 200, parsed.body, { ...decision.headers, [COST_HEADER]: picoToDecimalString(settlement.costPico) });
  }

  /**
   * Sends to the first deployment that accepts the connection. Only connection refusals fail
   * over: anything after the upstream has the request may have been billed there.
   */
  private async sendWithFailover<C extends { deployment: Deployment }>(
    candidates: Deployment[],
    decision: Decision,
    build: (deployment: Deployment) => { context: C; adapter: ProviderAdapter; request: UpstreamRequest },
    signal: AbortSignal,
  ): Promise<{ upstream: UpstreamResponse; context: C; adapter: ProviderAdapter }> {
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

function isConnectionRefused(error: unknown): boolean {
  const code = (error as { code?: string; cause?: { code?: string } })?.code ?? (error as { cause?: { code?: string } })?.cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

function upstreamFailure(error: unknown, deployment: Deployment): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = (error as { code?: string })?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('upstream_timeout', `Upstream ${deployment.id} did not answer within ${deployment.timeoutMs} ms.`);
  }
  const reason = (error as Error)?.message ?? 'unknown error';
  return new GatewayError('upstream_unreachable', `Upstream ${deployment.id} failed: ${code ? `${code} ` : ''}${reason}`);
}

function upstreamHttpError(status: number, message: string, deployment: Deployment): GatewayError {
  // Client-side errors (bad parameters, 404 model, 429 upstream rate limit) keep their status;
  // auth failures and server errors of the upstream are the gateway's problem: 502.
  const passThrough = status >= 400 && status < 500 && status !== 401 && status !== 403;
  return new GatewayError('upstream_error', `Upstream ${deployment.id} answered ${status}: ${message}`, null, {}, passThrough ? status : 502);
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
