/**
 * @module `anthropic/<model>`: the Messages API, translated both ways. Requests go to
 * `POST {api_base or https://api.anthropic.com}/v1/messages` with `x-api-key` and
 * `anthropic-version`; responses and stream events come back as OpenAI chat completions.
 */
import { GatewayError } from '../../shared/errors';
import { errorMessageFromBody, joinUrl } from '../openai-compatible';
import type { ChatContext, ParsedResponse, ProviderAdapter, UpstreamRequest } from '../types';
import { AnthropicStreamTranslator } from './anthropic-stream';
import { convertAnthropicResponse, type AnthropicMessage } from './convert-anthropic-response';
import { toAnthropicRequest } from './convert-to-anthropic-request';

export const ANTHROPIC_DEFAULT_BASE = 'https://api.anthropic.com';
/** The only version of the Messages API wire format; features come through beta headers. */
export const ANTHROPIC_VERSION = '2023-06-01';

/** `api_base` may be given with or without LiteLLM's trailing `/v1`. */
export function anthropicMessagesUrl(apiBase: string | undefined): string {
  return joinUrl((apiBase ?? ANTHROPIC_DEFAULT_BASE).replace(/\/+$/, '').replace(/\/v1$/, ''), '/v1/messages');
}

export const anthropicProvider: ProviderAdapter = {
  id: 'anthropic',

  buildChatRequest(context: ChatContext): UpstreamRequest {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: context.stream ? 'text/event-stream' : 'application/json',
      'anthropic-version': ANTHROPIC_VERSION,
    };
    if (context.deployment.apiKey) headers['x-api-key'] = context.deployment.apiKey;
    return { url: anthropicMessagesUrl(context.deployment.apiBase), method: 'POST', headers, body: JSON.stringify(toAnthropicRequest(context)) };
  },

  parseChatResponse(json: unknown): ParsedResponse {
    return convertAnthropicResponse((json ?? {}) as AnthropicMessage, Math.floor(Date.now() / 1000));
  },

  createStreamTranslator(context: ChatContext) {
    return new AnthropicStreamTranslator(context);
  },

  buildEmbeddingsRequest(context): UpstreamRequest {
    throw new GatewayError('invalid_request', `Model "${context.deployment.modelName}" is an anthropic/ model: Anthropic has no embeddings API.`, 'model');
  },

  parseEmbeddingsResponse(): ParsedResponse {
    throw new GatewayError('internal_error', 'anthropic/ has no embeddings API.');
  },

  // Anthropic errors are {"type":"error","error":{"type","message"}}: the shared reader finds error.message.
  errorMessage: errorMessageFromBody,
};
