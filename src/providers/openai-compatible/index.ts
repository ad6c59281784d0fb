/**
 * @module OpenAI and every server that speaks its API (mistral/, groq/, together_ai/, ollama/,
 * hosted_vllm/, deepseek/ …, and the built-in mock/). The body is forwarded as sent, with the
 * deployment's model id and, for streams, `stream_options.include_usage` so usage is exact.
 */
import type { ChatContext, EmbeddingsContext, ParsedResponse, ProviderAdapter, UpstreamRequest } from '../types';
import { OpenAIStreamTranslator } from './stream';
import { convertOpenAIUsage } from './usage';

export const OPENAI_DEFAULT_BASE = 'https://api.openai.com/v1';

/**
 * Fields only the gateway owns (LiteLLM's). The client's own `metadata` is passed through:
 * OpenAI takes it (stored-completion tags), and a client that sends it expects it to arrive.
 */
const GATEWAY_ONLY_FIELDS = ['litellm_metadata'];

export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

function jsonHeaders(apiKey: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  return headers;
}

export function openAIChatBody(context: ChatContext, includeModel = true): Record<string, unknown> {
  const body: Record<string, unknown> = { ...context.body };
  for (const field of GATEWAY_ONLY_FIELDS) delete body[field];
  if (includeModel) body.model = context.deployment.upstreamModel;
  else delete body.model;
  if (context.stream) {
    const options = body.stream_options && typeof body.stream_options === 'object' ? (body.stream_options as Record<string, unknown>) : {};
    body.stream_options = { ...options, include_usage: true };
  }
  return body;
}

export function openAIEmbeddingsBody(context: EmbeddingsContext): Record<string, unknown> {
  const body: Record<string, unknown> = { ...context.body, model: context.deployment.upstreamModel };
  for (const field of GATEWAY_ONLY_FIELDS) delete body[field];
  return body;
}

export function errorMessageFromBody(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (parsed.error && typeof parsed.error.message === 'string') return parsed.error.message;
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 500) || `upstream answered ${status}`;
}

export const openAICompatibleProvider: ProviderAdapter = {
  id: 'openai-compatible',

  buildChatRequest(context: ChatContext): UpstreamRequest {
    const base = context.deployment.apiBase ?? OPENAI_DEFAULT_BASE;
    return { url: joinUrl(base, '/chat/completions'), method: 'POST', headers: jsonHeaders(context.deployment.apiKey), body: JSON.stringify(openAIChatBody(context)) };
  },

  parseChatResponse(json: unknown): ParsedResponse {
    return { body: json, usage: convertOpenAIUsage((json as { usage?: unknown } | null)?.usage) };
  },

  createStreamTranslator(context: ChatContext) {
    return new OpenAIStreamTranslator(context);
  },

  buildEmbeddingsRequest(context: EmbeddingsContext): UpstreamRequest {
    const base = context.deployment.apiBase ?? OPENAI_DEFAULT_BASE;
    return { url: joinUrl(base, '/embeddings'), method: 'POST', headers: jsonHeaders(context.deployment.apiKey), body: JSON.stringify(openAIEmbeddingsBody(context)) };
  },

  parseEmbeddingsResponse(json: unknown): ParsedResponse {
    const usage = (json as { usage?: { prompt_tokens?: unknown } } | null)?.usage;
    return {
      body: json,
      usage: typeof usage?.prompt_tokens === 'number' ? { promptTokens: usage.prompt_tokens, completionTokens: 0 } : null,
    };
  },

  errorMessage: errorMessageFromBody,
};
