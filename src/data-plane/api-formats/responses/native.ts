/**
 * @module OpenAI Responses forwarded to an upstream that has it (`openai/`, `azure/`, or any
 * deployment with `model_info.responses_api: native`). Body and events pass through as sent
 * (only the model id is the deployment's); usage is read from the body or from the terminal
 * event (`response.completed`, `response.incomplete`, `response.failed`).
 */
import type { Deployment } from '../../../config/load';
import type { TokenUsage } from '../../../pricing/prices';
import { errorMessageFromBody, joinUrl, OPENAI_DEFAULT_BASE } from '../../../providers/openai-compatible';
import type { SseEvent, SseOut, StreamTranslator, UpstreamRequest } from '../../../providers/types';
import type { Exchange } from '../types';

type Json = Record<string, unknown>;

/** Fields Tollgate owns; everything else the client sent reaches the upstream. */
const GATEWAY_ONLY_FIELDS = ['litellm_metadata'];

const TERMINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** Responses `usage` → TokenUsage (cached input tokens priced as cached; reasoning is output). */
export function convertResponsesUsage(usage: unknown): TokenUsage | null {
  if (!usage || typeof usage !== 'object') return null;
  const u = usage as { input_tokens?: unknown; output_tokens?: unknown; input_tokens_details?: { cached_tokens?: unknown } | null };
  if (typeof u.input_tokens !== 'number') return null;
  const cached = typeof u.input_tokens_details?.cached_tokens === 'number' ? u.input_tokens_details.cached_tokens : 0;
  return { promptTokens: u.input_tokens, completionTokens: typeof u.output_tokens === 'number' ? u.output_tokens : 0, cachedPromptTokens: cached };
}

/**
 * Azure's Responses API lives at the resource's v1 path and takes the deployment as `model`
 * (`{resource}/openai/v1/responses`); no api-version is needed there.
 */
export function nativeResponsesUrl(deployment: Deployment): string {
  if (deployment.provider === 'azure') return `${(deployment.apiBase ?? '').replace(/\/+$/, '').replace(/\/openai(?:\/v1)?$/, '')}/openai/v1/responses`;
  return joinUrl(deployment.apiBase ?? OPENAI_DEFAULT_BASE, '/responses');
}

export function nativeResponsesRequest(deployment: Deployment, body: Json): UpstreamRequest {
  const forwarded: Json = { ...body, model: deployment.upstreamModel };
  for (const field of GATEWAY_ONLY_FIELDS) delete forwarded[field];
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (deployment.apiKey) {
    if (deployment.provider === 'azure') headers['api-key'] = deployment.apiKey;
    else headers.authorization = `Bearer ${deployment.apiKey}`;
  }
  return { url: nativeResponsesUrl(deployment), method: 'POST', headers, body: JSON.stringify(forwarded) };
}

function outputTextOf(response: Json): string {
  let text = '';
  for (const item of (response.output as Json[] | undefined) ?? []) {
    if (item.type === 'function_call') text += `${String(item.name ?? '')}${String(item.arguments ?? '')}`;
    for (const part of (item.content as Json[] | undefined) ?? []) if (typeof part.text === 'string') text += part.text;
  }
  return text;
}

export function nativeResponsesExchange(deployment: Deployment, body: Json): Exchange {
  return {
    deployment,
    request: nativeResponsesRequest(deployment, body),
    parseJson(json) {
      const response = (json ?? {}) as Json;
      return { body: json, passThrough: true, usage: convertResponsesUsage(response.usage), outputText: outputTextOf(response) };
    },
    createStream: () => new NativeResponsesStream(),
    errorMessage: errorMessageFromBody,
  };
}

/** Passes every event through unchanged, reading the usage of the terminal event. */
export class NativeResponsesStream implements StreamTranslator {
  usage: TokenUsage | null = null;
  finished = false;
  errored = false;
  private text = '';
  /** The final response object (from the terminal event). */
  finalResponse: Json | null = null;

  get usageComplete(): boolean {
    return this.usage !== null && this.finished;
  }

  get deliveredText(): string {
    return this.text;
  }

  onEvent(event: SseEvent): SseOut[] {
    const out: SseOut = event.event ? { event: event.event, data: event.data } : event.data;
    // Deltas are the bulk of a stream: read their text without parsing the JSON twice.
    let data: Json;
    try {
      data = JSON.parse(event.data) as Json;
    } catch {
      return [out];
    }
    const type = typeof data.type === 'string' ? data.type : event.event;
    if (type === 'response.output_text.delta' || type === 'response.function_call_arguments.delta' || type === 'response.reasoning_summary_text.delta') {
      if (typeof data.delta === 'string') this.text += data.delta;
    } else if (type && TERMINAL_EVENTS.has(type)) {
      this.finished = true;
      const response = (data.response ?? {}) as Json;
      this.finalResponse = response;
      this.usage = convertResponsesUsage(response.usage);
    } else if (type === 'error') this.errored = true;
    return [out];
  }

  finish(): SseOut[] {
    return []; // the Responses API has no [DONE]: response.completed is the end
  }
}
