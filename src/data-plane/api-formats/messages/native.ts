/**
 * @module Anthropic Messages forwarded to an `anthropic/` deployment (or any deployment with
 * `model_info.messages_api: native`): body and every event pass through as sent (only the
 * model id is the deployment's), with the client's `anthropic-version` and `anthropic-beta`.
 * Usage comes from message_start (input and cache split) and message_delta (final output).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Deployment } from '../../../config/load';
import type { TokenUsage } from '../../../pricing/prices';
import { ANTHROPIC_VERSION, anthropicMessagesUrl } from '../../../providers/anthropic';
import { convertAnthropicUsage, mergeAnthropicUsage, type AnthropicUsage } from '../../../providers/anthropic/convert-anthropic-usage';
import { errorMessageFromBody } from '../../../providers/openai-compatible';
import type { SseEvent, SseOut, StreamTranslator, UpstreamRequest } from '../../../providers/types';
import type { Exchange } from '../types';

type Json = Record<string, unknown>;

/** Fields Tollgate owns; everything else the client sent reaches the upstream. */
const GATEWAY_ONLY_FIELDS = ['litellm_metadata'];

function headerText(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export function nativeAnthropicHeaders(deployment: Deployment, clientHeaders: IncomingHttpHeaders, stream: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
    'anthropic-version': headerText(clientHeaders, 'anthropic-version') ?? ANTHROPIC_VERSION,
  };
  const beta = headerText(clientHeaders, 'anthropic-beta');
  if (beta) headers['anthropic-beta'] = beta;
  if (deployment.apiKey) headers['x-api-key'] = deployment.apiKey;
  return headers;
}

export function nativeMessagesRequest(deployment: Deployment, body: Json, clientHeaders: IncomingHttpHeaders, path = '/v1/messages'): UpstreamRequest {
  const forwarded: Json = { ...body, model: deployment.upstreamModel };
  for (const field of GATEWAY_ONLY_FIELDS) delete forwarded[field];
  const url = anthropicMessagesUrl(deployment.apiBase).replace(/\/v1\/messages$/, path);
  return { url, method: 'POST', headers: nativeAnthropicHeaders(deployment, clientHeaders, body.stream === true), body: JSON.stringify(forwarded) };
}

function outputTextOf(message: Json): string {
  let text = '';
  for (const block of (message.content as Json[] | undefined) ?? []) {
    if (typeof block.text === 'string') text += block.text;
    else if (typeof block.thinking === 'string') text += block.thinking;
    else if (block.type === 'tool_use') text += `${String(block.name ?? '')}${JSON.stringify(block.input ?? {})}`;
  }
  return text;
}

export function nativeMessagesExchange(deployment: Deployment, body: Json, clientHeaders: IncomingHttpHeaders): Exchange {
  return {
    deployment,
    request: nativeMessagesRequest(deployment, body, clientHeaders),
    parseJson(json) {
      const message = (json ?? {}) as Json;
      return { body: json, passThrough: true, usage: convertAnthropicUsage(message.usage as AnthropicUsage | undefined), outputText: outputTextOf(message) };
    },
    createStream: () => new NativeMessagesStream(),
    errorMessage: errorMessageFromBody,
  };
}

interface AnthropicEvent {
  type?: string;
  message?: { usage?: AnthropicUsage };
  usage?: AnthropicUsage;
  delta?: { text?: unknown; partial_json?: unknown; thinking?: unknown };
}

/** Passes every event through unchanged, reading usage from message_start and message_delta. */
export class NativeMessagesStream implements StreamTranslator {
  usageComplete = false;
  finished = false;
  errored = false;
  private reported: AnthropicUsage | null = null;
  private text = '';

  get usage(): TokenUsage | null {
    return convertAnthropicUsage(this.reported);
  }

  get deliveredText(): string {
    return this.text;
  }

  onEvent(event: SseEvent): SseOut[] {
    const out: SseOut = event.event ? { event: event.event, data: event.data } : event.data;
    let data: AnthropicEvent;
    try {
      data = JSON.parse(event.data) as AnthropicEvent;
    } catch {
      return [out];
    }
    switch (data.type ?? event.event) {
      case 'message_start':
        this.reported = mergeAnthropicUsage({}, data.message?.usage);
        break;
      case 'content_block_delta': {
        const delta = data.delta ?? {};
        for (const piece of [delta.text, delta.partial_json, delta.thinking]) if (typeof piece === 'string') this.text += piece;
        break;
      }
      case 'message_delta':
        this.reported = mergeAnthropicUsage(this.reported ?? {}, data.usage);
        // message_delta comes after the last content block, with the final cumulative counts.
        this.usageComplete = this.reported.input_tokens !== undefined;
        break;
      case 'message_stop':
        this.finished = true;
        break;
      case 'error':
        this.errored = true;
        break;
    }
    return [out];
  }

  finish(): SseOut[] {
    return []; // message_stop was the end
  }
}
