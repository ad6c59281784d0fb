/**
 * @module The contract of an API format (chat completions, OpenAI Responses, Anthropic
 * Messages). The inference pipeline is the same for all of them (parse → authorize → forward
 * → relay → settle); a format only says how its body reads, how one deployment is called
 * (natively or translated through Chat Completions), and how its errors and usage look.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Deployment } from '../../config/load';
import type { Principal } from '../../governance/records';
import type { TokenUsage } from '../../pricing/prices';
import type { OutboundRequest, SseOut, StreamTranslator } from '../../providers/types';
import type { GatewayError } from '../../shared/errors';

/** The route a request came in on: the ledger's `endpoint`, the metrics' `route`. */
export type RouteName = 'chat' | 'responses' | 'messages';

export interface FormatRequestContext {
  requestId: string;
  principal: Principal;
  headers: IncomingHttpHeaders;
  /** The client's body, parsed; formats must not mutate it. */
  body: Record<string, unknown>;
}

/** What the pipeline needs to know of a request before it is sent. */
export interface ParsedRequest {
  stream: boolean;
  /** Counted prompt tokens, for the admission estimate. */
  promptTokens: number;
  /** The output cap the client set, if any. */
  requestedMaxTokens: number | null;
  /** The format's own state for this request (translated bodies, resolved history …). */
  state: unknown;
}

export interface ParsedJson {
  /** The body for the client. */
  body: unknown;
  /** `body` is the upstream's JSON unchanged: send its bytes as received. */
  passThrough: boolean;
  usage: TokenUsage | null;
  /** Generated text, counted when the upstream reported no usage. */
  outputText: string;
}

/** One call of one deployment, built by a format. */
export interface Exchange {
  deployment: Deployment;
  request: OutboundRequest;
  parseJson(json: unknown): ParsedJson;
  createStream(): StreamTranslator;
  errorMessage(status: number, body: string): string;
}

/** What the pipeline tells a format once the client has the whole answer. */
export interface Completed {
  context: FormatRequestContext;
  parsed: ParsedRequest;
  /** The JSON body sent, or for a stream the translator that produced it. */
  body: unknown;
  translator: StreamTranslator | null;
}

export interface ApiFormat {
  readonly route: RouteName;
  /** Validates the body (a 400 naming the field) and reads what admission needs. */
  parse(context: FormatRequestContext, deployment: Deployment): Promise<ParsedRequest>;
  exchange(context: FormatRequestContext, parsed: ParsedRequest, deployment: Deployment): Exchange;
  /** The error body and headers in this API's envelope. */
  renderError(error: GatewayError): { body: unknown; headers: Record<string, string> };
  /** What to send when a stream breaks after it started. */
  streamError(error: GatewayError): SseOut[];
  /**
   * The stream event that carries the usage, with the cost (and the budget left) added;
   * null for any other event. The relay holds such an event until the request is settled.
   */
  withCost(payload: SseOut, cost: CostFigures): SseOut | null;
  /** Called after a successful answer (e.g. to store a response for later turns). */
  completed?(completed: Completed): Promise<void>;
  /**
   * The real prompt tokens of a request body, yielding while it counts: what is billed when
   * the provider reports no usage (the admission estimate is an upper bound above 8 KB of text).
   * A format without it is billed its estimate.
   */
  countPromptTokensExact?(body: Record<string, unknown>): Promise<number>;
}

/** Dollar figures (decimal strings) added to a stream's usage event. */
export interface CostFigures {
  cost: string;
  budgetRemaining: string | null;
}

/** The usage object with Tollgate's figures: `cost` as OpenRouter sends it, a number of dollars. */
export function addCostFields(usage: Record<string, unknown>, figures: CostFigures): Record<string, unknown> {
  const withCost: Record<string, unknown> = { ...usage, cost: Number(figures.cost) };
  if (figures.budgetRemaining !== null) withCost.budget_remaining = Number(figures.budgetRemaining);
  return withCost;
}

export function dataOf(payload: SseOut): string {
  return typeof payload === 'string' ? payload : payload.data;
}
