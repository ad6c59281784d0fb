/**
 * @module The inference pipeline, the same for every route and API format: authenticate →
 * parse → identify customer → route model → authorize (internal resolver) → forward → relay
 * (JSON or stream) → settle → respond. A format (chat, Responses, Messages) only says how its
 * body reads and how a deployment is called. Settlement happens before the last byte leaves,
 * so spend is visible (and journaled) as soon as the client has the whole response.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deployment } from '../config/load';
import type { InternalResolver, Decision, Settlement } from '../governance/resolver';
import { CREDITS_REMAINING_HEADER } from '../governance/resolver';
import type { Registry } from '../governance/registry';
import type { Principal } from '../governance/records';
import { countTextTokens, estimateEmbeddingInputTokens } from '../pricing/tokens';
import { adapterFor } from '../providers/registry';
import type { UpstreamRequest } from '../providers/types';
import type { CostSource } from '../ledger/types';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString } from '../shared/money';
import type { Logger } from '../observability/logger';
import type { RefusalSink } from '../activity/refusals';
import type { GatewayMetrics } from '../observability/metrics';
import { chatFormat } from './api-formats/chat';
import { countMessageTokens, messagesFormat } from './api-formats/messages';
import { anthropicModelList, openAIModelList } from './api-formats/models';
import { createResponsesFormat } from './api-formats/responses';
import type { ResponseStore } from './api-formats/responses/store';
import type { ApiFormat, Exchange, FormatRequestContext, ParsedRequest } from './api-formats/types';
import { customerIdFor, DEFAULT_CUSTOMER_ID_SOURCES, type CustomerIdSource } from './customer-id';
import type { Forwarder, UpstreamResponse } from './forwarder';
import { BigBody, BodyWorkers, readRequestBody } from './big-body';
import { bearerToken, rawJson, sendJson } from './http-io';
import type { ModelRouter } from './model-router';
import type { RouteMatch } from './routes';
import { COST_HEADER, relayStream } from './stream-relay';
import { isConnectionRefused, upstreamFailure, upstreamHttpError } from './upstream-errors';

export interface InferenceDependencies {
  registry: Registry;
  resolver: InternalResolver;
  router: ModelRouter;
  forwarder: Forwarder;
  logger: Logger;
  maxBodyBytes: number;
  metrics?: Pick<GatewayMetrics, 'requestFinished'>;
  /** Where a customer ID is read from, in order (`tollgate.customer_id_sources`). */
  customerIdSources?: CustomerIdSource[];
  /** Responses Tollgate produced, for `previous_response_id` (absent: nothing is stored). */
  responseStore?: ResponseStore;
  /** Configured secrets (provider keys …), cut from any upstream error message. */
  secrets?: string[];
  /** Told of each refusal at admission (the console's refused-request log); must not block. */
  refusals?: RefusalSink;
}

/** The largest output cap a request may ask for (the 400 names the field). */
export const MAX_OUTPUT_TOKENS_CEILING = 1_000_000;

const BUDGET_REMAINING_HEADER = 'x-tollgate-budget-remaining';


interface Prepared {
  requestId: string;
  principal: Principal;
  body: Record<string, unknown>;
  model: string;
  customerId: string | null;
  headers: IncomingMessage['headers'];
  /** Size of the request body: marks a request big enough to let others run between its steps. */
  bodyBytes: number;
  /** A big chat or Messages body, prepared by the body workers (`body` is then its head). */
  big: BigBody | null;
}

/** An upstream response together with the exchange that produced it. */
type Sent = { upstream: UpstreamResponse; exchange: Exchange };

export class InferenceHandler {
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];

  private readonly formats: Record<'chat' | 'responses' | 'messages', ApiFormat>;
  private readonly bodyWorkers = new BodyWorkers();

  constructor(private readonly deps: InferenceDependencies) {
    this.formats = { chat: chatFormat, responses: createResponsesFormat(deps.responseStore ?? null), messages: messagesFormat };
  }

  /** Requests currently being served (graceful stop waits for zero). */
  get activeRequests(): number {
    return this.inFlight;
  }

  /** Stops the body workers (at shutdown). */
  close(): Promise<void> {
    return this.bodyWorkers.close();
  }

  waitForDrain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Serves one matched inference route; errors in the route's own envelope. */
  async handle(match: RouteMatch, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { endpoint } = match;
    // Anthropic's routes answer errors in Anthropic's envelope, the rest in OpenAI's.
    const format = endpoint === 'messages' || endpoint === 'count_tokens' ? this.formats.messages : endpoint === 'responses' || endpoint === 'get_response' ? this.formats.responses : this.formats.chat;
    if (request.method !== match.method) {
      request.resume();
      this.sendFormatError(format, response, new GatewayError('invalid_request', `Use ${match.method} for ${(request.url ?? '').split('?')[0]}.`, null, { allow: match.method }, 405));
      return;
    }
    if (endpoint === 'models') return this.listModels(request, response);
    this.inFlight++;
    const started = performance.now();
    const requestId = randomUUID();
    response.setHeader('x-request-id', requestId);
    let model: string | null = null;
    try {
      if (endpoint === 'get_response') {
        await this.getStoredResponse(match.id ?? '', request, response);
        return;
      }
      const prepared = await this.prepare(requestId, request, endpoint);
      model = prepared.model;
      if (endpoint === 'embeddings') await this.embeddings(prepared, response);
      else if (endpoint === 'count_tokens') await this.countTokens(prepared, response);
      else await this.serve(this.formats[endpoint], prepared, response);
    } catch (error) {
      if (response.destroyed) return; // the client left: nobody to tell
      if (error instanceof GatewayError) this.sendFormatError(format, response, error);
      else {
        this.deps.logger.error({ err: error, requestId }, 'inference request failed');
        this.sendFormatError(format, response, new GatewayError('internal_error', `Internal error while serving request ${requestId}.`));
      }
    } finally {
      if (--this.inFlight === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
      // 499 (nginx's "client closed request") when the client left before the last byte.
      const status = response.writableEnded ? response.statusCode : 499;
      this.deps.metrics?.requestFinished(endpoint === 'count_tokens' ? 'messages' : endpoint === 'get_response' ? 'responses' : endpoint, model, status, (performance.now() - started) / 1000);
    }
  }

  /** `GET /v1/models`: OpenAI's list, or Anthropic's when the client sends `anthropic-version`. */
  listModels(request: IncomingMessage, response: ServerResponse): void {
    const anthropic = request.headers['anthropic-version'] !== undefined;
    if (!this.deps.registry.authenticate(bearerToken(request))) {
      this.sendFormatError(anthropic ? messagesFormat : chatFormat, response, unauthorized());
      return;
    }
    const names = this.deps.router.modelNames;
    sendJson(response, 200, anthropic ? anthropicModelList(names) : openAIModelList(names));
  }

  private sendFormatError(format: ApiFormat, response: ServerResponse, error: GatewayError): void {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const { body, headers } = format.renderError(error);
    sendJson(response, error.status, body, headers);
  }

  private async authenticate(request: IncomingMessage): Promise<Principal> {
    await this.deps.registry.refreshed(); // a key another process just revoked is gone here too
    const principal = this.deps.registry.authenticate(bearerToken(request));
    if (!principal) {
      request.resume();
      throw unauthorized();
    }
    return principal;
  }

  private async prepare(requestId: string, request: IncomingMessage, endpoint: string): Promise<Prepared> {
    const principal = await this.authenticate(request);
    const { value: parsed, bytes: bodyBytes, big } = await readRequestBody(request, this.deps.maxBodyBytes, endpoint, this.bodyWorkers, () => this.deps.router.firsts());
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new GatewayError('invalid_request', 'Request body must be a JSON object.', null);
    }
    const body = parsed as Record<string, unknown>;
    if (typeof body.model !== 'string' || !body.model) throw new GatewayError('invalid_request', '"model" is required and must be a string.', 'model');
    if (!this.deps.router.has(body.model)) {
      throw new GatewayError('model_not_found', `Model "${body.model}" is not served by this gateway. Available: ${this.deps.router.modelNames.join(', ')}.`, 'model');
    }
    const customerId = customerIdFor(principal, request.headers, body, this.deps.customerIdSources ?? DEFAULT_CUSTOMER_ID_SOURCES);
    return { requestId, principal, body, model: body.model, customerId, headers: request.headers, bodyBytes, big };
  }

  private async authorizeFor(prepared: Prepared, deployment: Deployment, endpoint: Decision['request']['endpoint'], promptTokens: number, maxCompletionTokens: number, requestedMaxTokens: number | null): Promise<Decision> {
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

  /** The one path of chat, Responses and Messages requests. */
  private async serve(format: ApiFormat, prepared: Prepared, response: ServerResponse): Promise<void> {
    const candidates = this.deps.router.candidates(prepared.model);
    const first = candidates[0]!;
    const context: FormatRequestContext = { requestId: prepared.requestId, principal: prepared.principal, headers: prepared.headers, body: prepared.body };
    const { big } = prepared;
    const parsed = big ? await big.parse(first) : await format.parse(context, first);
    // No model writes a million tokens in one answer; a larger cap (2^53, 1e300) is a mistake or
    // an attack, and would only inflate the budget reservation and rate-limit arithmetic.
    if (parsed.requestedMaxTokens !== null && parsed.requestedMaxTokens > MAX_OUTPUT_TOKENS_CEILING) {
      const field = maxTokensFieldOf(prepared.body, format.route);
      throw new GatewayError('invalid_request', `"${field}" must be at most ${MAX_OUTPUT_TOKENS_CEILING}, not ${parsed.requestedMaxTokens}.`, field);
    }
    const maxCompletionTokens = parsed.requestedMaxTokens ?? first.maxOutputTokens;
    const decision = await this.authorizeFor(prepared, first, format.route, parsed.promptTokens, maxCompletionTokens, parsed.requestedMaxTokens);
    if (!big) await yieldIfLarge(prepared.bodyBytes); // building the upstream request re-serialises it all

    // A stream is cancelled upstream when its client leaves: nothing more can be delivered and
    // the provider stops generating (we bill what was delivered). A non-streamed answer is read
    // to the end even then, so the provider's exact usage is billed: it bills us either way.
    // No AbortController for a non-streamed request: a signal costs undici listeners per request.
    let signal: AbortSignal | undefined;
    if (parsed.stream) {
      const abort = new AbortController();
      signal = abort.signal;
      response.on('close', () => {
        if (!response.writableFinished) abort.abort();
      });
    }
    const sent = await this.forward(candidates, decision, (deployment) => (big ? big.exchange(format, context, parsed, deployment) : format.exchange(context, parsed, deployment)), signal);
    if (parsed.stream) {
      const stream = { requestId: prepared.requestId, format, decision, exchange: sent.exchange, upstream: sent.upstream, promptTokens: parsed.promptTokens, exactPromptTokens: () => (big ? big.countPromptTokens() : exactPromptTokens(format, context, parsed)) };
      await relayStream(this.deps, { ...stream, onCompleted: (translator) => this.completed(format, { context, parsed, body: null, translator }) }, response);
    } else if (big) await this.relayBigJson(big, parsed, decision, sent, response);
    else await this.relayJson(format, context, parsed, decision, sent, response);
  }

  /** relayJson for a big body: its answer read by the body workers, its prompt counted there. */
  private async relayBigJson(big: BigBody, parsed: ParsedRequest, decision: Decision, sent: Sent, response: ServerResponse): Promise<void> {
    let answer;
    try {
      answer = await big.readAnswer(sent.upstream, sent.exchange, parsed);
    } catch (error) {
      await this.deps.resolver.release(decision);
      throw error instanceof GatewayError ? error : upstreamFailure(error, sent.exchange.deployment);
    }
    let usage = answer.usage;
    let source: CostSource = 'provider';
    if (!usage) {
      usage = { promptTokens: await big.countPromptTokens(), completionTokens: answer.completionTokens };
      source = 'computed';
    }
    const settlement = await this.deps.resolver.settle(decision, usage, source, response.destroyed ? 'partial' : 'success');
    if (response.destroyed) return;
    sendJson(response, 200, answer.payload, { ...decision.headers, ...costHeaders(settlement) });
  }

  private async relayJson(format: ApiFormat, context: FormatRequestContext, parsed: ParsedRequest, decision: Decision, sent: Sent, response: ServerResponse): Promise<void> {
    const { upstream, exchange } = sent;
    const { json, text } = await this.readUpstreamJson(decision, upstream, exchange.deployment);
    let answer;
    try {
      answer = exchange.parseJson(json);
    } catch (error) {
      await this.deps.resolver.release(decision);
      throw error;
    }
    let usage = answer.usage;
    let source: CostSource = 'provider';
    if (!usage) {
      usage = { promptTokens: await exactPromptTokens(format, context, parsed), completionTokens: countTextTokens(answer.outputText) };
      source = 'computed';
    }
    // The client may have left while the provider was still answering: billed all the same.
    const settlement = await this.deps.resolver.settle(decision, usage, source, response.destroyed ? 'partial' : 'success');
    if (response.destroyed) return;
    await this.completed(format, { context, parsed, body: answer.body, translator: null });
    sendJson(response, 200, answer.passThrough ? rawJson(text) : answer.body, { ...decision.headers, ...costHeaders(settlement) });
  }

  private async completed(format: ApiFormat, completed: Parameters<NonNullable<ApiFormat['completed']>>[0]): Promise<void> {
    if (!format.completed) return;
    try {
      await format.completed(completed);
    } catch (error) {
      // The answer is paid for and complete: a failed store costs later turns, not this one.
      this.deps.logger.error({ err: error, requestId: completed.context.requestId }, 'could not store the response for later turns');
    }
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

  private async embeddings(prepared: Prepared, response: ServerResponse): Promise<void> {
    const { body } = prepared;
    const input = body.input;
    const validInput = typeof input === 'string' || (Array.isArray(input) && input.length > 0);
    if (!validInput) throw new GatewayError('invalid_request', '"input" is required: a string or a non-empty array.', 'input');
    const candidates = this.deps.router.candidates(prepared.model);
    const promptTokens = estimateEmbeddingInputTokens(input, prepared.bodyBytes);
    const decision = await this.authorizeFor(prepared, candidates[0]!, 'embeddings', promptTokens, 0, 0);
    // Like a non-streamed chat: read to the end even if the client leaves, and bill it.
    const { upstream, exchange } = await this.forward(candidates, decision, (deployment) => embeddingsExchange(deployment, body), undefined);
    const { json, text } = await this.readUpstreamJson(decision, upstream, exchange.deployment);
    const parsed = exchange.parseJson(json);
    const usage = parsed.usage ?? { promptTokens, completionTokens: 0 };
    const settlement = await this.deps.resolver.settle(decision, usage, parsed.usage ? 'provider' : 'computed', response.destroyed ? 'partial' : 'success');
    if (response.destroyed) return;
    sendJson(response, 200, parsed.passThrough ? rawJson(text) : parsed.body, { ...decision.headers, ...costHeaders(settlement) });
  }

  /** `POST /v1/messages/count_tokens`: free, so authenticated but neither admitted nor metered. */
  private async countTokens(prepared: Prepared, response: ServerResponse): Promise<void> {
    const deployment = this.deps.router.candidates(prepared.model)[0]!;
    const native = countMessageTokens(prepared.body, deployment, prepared.headers);
    if ('inputTokens' in native) {
      sendJson(response, 200, { input_tokens: native.inputTokens });
      return;
    }
    const upstream = await this.deps.forwarder.send(native.request, { timeoutMs: deployment.timeoutMs }).catch((error: unknown) => {
      throw upstreamFailure(error, deployment);
    });
    const text = await readAll(upstream);
    if (upstream.status >= 400) throw upstreamHttpError(upstream.status, adapterFor(deployment.provider).errorMessage(upstream.status, text), deployment, upstream.headers, { sentHeaders: native.request.headers, secrets: this.deps.secrets ?? [] });
    sendJson(response, 200, rawJson(text));
  }

  /** `GET /v1/responses/{id}`: a response Tollgate stored, for the key that created it. */
  private async getStoredResponse(id: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const principal = await this.authenticate(request);
    const stored = await this.deps.responseStore?.get(id, principal.keyHash);
    if (!stored) throw new GatewayError('not_found', `No stored response "${id}" for this key (responses are kept for the key that created them, unless sent with "store": false).`, 'response_id');
    sendJson(response, 200, stored.response);
  }

  /**
   * Sends the request and hands back a successful upstream response. Whatever fails on the
   * way (no deployment reachable, an error status) releases the decision's reservations,
   * since nothing was generated, and becomes an error for the client.
   */
  private async forward(candidates: Deployment[], decision: Decision, build: (deployment: Deployment) => Exchange | Promise<Exchange>, signal: AbortSignal | undefined): Promise<Sent> {
    let sent: Sent;
    try {
      sent = await this.sendWithFailover(candidates, decision, build, signal);
    } catch (error) {
      await this.deps.resolver.release(decision);
      throw error;
    }
    const { upstream, exchange } = sent;
    if (upstream.status >= 400) {
      const text = await readAll(upstream).catch(() => '');
      await this.deps.resolver.release(decision);
      throw upstreamHttpError(upstream.status, exchange.errorMessage(upstream.status, text), exchange.deployment, upstream.headers, { sentHeaders: exchange.request.headers, secrets: this.deps.secrets ?? [] });
    }
    return sent;
  }

  /**
   * Sends to the first deployment that accepts the connection. Only connection refusals fail
   * over: anything after the upstream has the request may have been billed there.
   */
  private async sendWithFailover(candidates: Deployment[], decision: Decision, build: (deployment: Deployment) => Exchange | Promise<Exchange>, signal: AbortSignal | undefined): Promise<Sent> {
    let lastError: unknown;
    for (const deployment of candidates) {
      const exchange = await build(deployment);
      try {
        const upstream = await this.deps.forwarder.send(exchange.request, { signal, timeoutMs: deployment.timeoutMs });
        // Bill at the prices of the deployment that actually served the request.
        decision.request.deployment = deployment;
        return { upstream, exchange };
      } catch (error) {
        lastError = error;
        if (!isConnectionRefused(error) || signal?.aborted) break;
        this.deps.logger.warn({ deployment: deployment.id, err: (error as Error).message }, 'deployment refused the connection; trying the next');
      }
    }
    throw upstreamFailure(lastError, candidates[candidates.length - 1]!);
  }
}

function embeddingsExchange(deployment: Deployment, body: Record<string, unknown>): Exchange {
  const adapter = adapterFor(deployment.provider);
  const context = { deployment, body };
  const request: UpstreamRequest = adapter.buildEmbeddingsRequest(context);
  return {
    deployment,
    request,
    parseJson(json) {
      const parsed = adapter.parseEmbeddingsResponse(json, context);
      return { body: parsed.body, passThrough: parsed.body === json, usage: parsed.usage, outputText: '' };
    },
    createStream: () => {
      throw new GatewayError('invalid_request', 'Embeddings do not stream.', 'stream');
    },
    errorMessage: (status, text) => adapter.errorMessage(status, text),
  };
}

/** The cost, and after a JSON answer the budget left once it is paid. */
/** The output-cap field the client used, for a refusal that names it. */
function maxTokensFieldOf(body: Record<string, unknown>, route: string): string {
  if (route === 'responses') return 'max_output_tokens';
  return body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
}

/** Lets other requests run between the long steps of a request of megabytes. */
async function yieldIfLarge(bodyBytes: number): Promise<void> {
  if (bodyBytes > 256 * 1024) await new Promise((resolve) => setImmediate(resolve));
}

/** What the customer is charged (its tier's price), and the budget left after it. */
function costHeaders(settlement: Settlement): Record<string, string> {
  const headers: Record<string, string> = { [COST_HEADER]: picoToDecimalString(settlement.chargePico) };
  if (settlement.budgetRemainingPico !== null) headers[BUDGET_REMAINING_HEADER] = picoToDecimalString(settlement.budgetRemainingPico);
  if (settlement.creditsRemainingPico != null) headers[CREDITS_REMAINING_HEADER] = picoToDecimalString(settlement.creditsRemainingPico);
  return headers;
}

function unauthorized(): GatewayError {
  return new GatewayError('unauthorized', 'Authentication failed: pass a valid key as "Authorization: Bearer <key>" (or "x-api-key: <key>").', null);
}

async function readAll(upstream: UpstreamResponse): Promise<string> {
  if (upstream.text) return upstream.text();
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of upstream.body) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

/**
 * What a request's prompt is billed when the provider reports no usage: the exact count (it
 * yields while it counts), else the admission estimate, which is exact up to 8 KB of text.
 */
function exactPromptTokens(format: ApiFormat, context: FormatRequestContext, parsed: ParsedRequest): Promise<number> {
  return format.countPromptTokensExact ? format.countPromptTokensExact(context.body) : Promise.resolve(parsed.promptTokens);
}
