/**
 * @module The provider contract. A provider is a pure translator between the OpenAI wire
 * format our clients speak and its upstream's format: no I/O here. Network, timeouts,
 * retries and failover live in the data plane's forwarder.
 */
import type { Deployment } from '../config/load';
import type { TokenUsage } from '../pricing/prices';

export interface UpstreamRequest {
  url: string;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body: string | null;
}

/** What is sent: JSON text, or its bytes when a body worker serialised it (a big body). */
export interface OutboundRequest extends Omit<UpstreamRequest, 'body'> {
  body: string | Uint8Array | null;
}

export interface ChatContext {
  deployment: Deployment;
  /** The client's body, already parsed; providers must not mutate it. */
  body: Record<string, unknown>;
  stream: boolean;
  /** The client asked for `stream_options.include_usage` itself. */
  clientWantsUsage: boolean;
}

export interface EmbeddingsContext {
  deployment: Deployment;
  body: Record<string, unknown>;
}

export interface ParsedResponse {
  /** The OpenAI-shaped body to send to the client. */
  body: unknown;
  usage: TokenUsage | null;
}

/** One Server-Sent Event as received (`event:` name and joined `data:` lines). */
export interface SseEvent {
  event?: string;
  data: string;
}

/** One event for the client: a bare `data:` payload, or a named event (Responses, Messages). */
export type SseOut = string | { event: string; data: string };

export interface StreamTranslator {
  /** Translates one upstream event into zero or more events for the client. */
  onEvent(event: SseEvent): SseOut[];
  /** Events to send after the upstream finished cleanly (`[DONE]` for chat). */
  finish(): SseOut[];
  /**
   * Provider-reported usage seen so far. It may be partial (Anthropic reports the prompt at
   * the start and the output at the end): trust it for the whole request only when
   * `usageComplete` is true.
   */
  readonly usage: TokenUsage | null;
  /** The provider's usage covers the whole generation (it was reported after the end). */
  readonly usageComplete: boolean;
  /** Completion text delivered so far, to count usage when a stream ends early. */
  readonly deliveredText: string;
  /** The provider signalled the end of the generation (finish_reason, [DONE], message_stop). */
  readonly finished: boolean;
  /** The upstream sent an error event, already translated for the client. */
  readonly errored?: boolean;
}

export interface ProviderAdapter {
  readonly id: string;
  buildChatRequest(context: ChatContext): UpstreamRequest;
  parseChatResponse(json: unknown, context: ChatContext): ParsedResponse;
  createStreamTranslator(context: ChatContext): StreamTranslator;
  buildEmbeddingsRequest(context: EmbeddingsContext): UpstreamRequest;
  parseEmbeddingsResponse(json: unknown, context: EmbeddingsContext): ParsedResponse;
  /** The human-readable message of an upstream error body, if the provider has one. */
  errorMessage(status: number, body: string): string;
}
