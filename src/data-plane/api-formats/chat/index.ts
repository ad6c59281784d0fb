/**
 * @module `POST /chat/completions`: the pivot format. Every provider adapter speaks it, and the
 * Responses and Messages formats reach non-native deployments by translating through it.
 */
import type { Deployment } from '../../../config/load';
import { countChatPromptTokensExact, estimateChatPromptTokens } from '../../../pricing/tokens';
import { adapterFor } from '../../../providers/registry';
import type { ChatContext, SseOut } from '../../../providers/types';
import { GatewayError } from '../../../shared/errors';
import { addCostFields, dataOf, type ApiFormat, type CostFigures, type Exchange, type FormatRequestContext, type ParsedRequest } from '../types';

interface ChatState {
  clientWantsUsage: boolean;
}

export function validateChatBody(body: Record<string, unknown>): void {
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
}

/** A chat body sent to one deployment through its provider adapter. */
export function chatExchange(deployment: Deployment, body: Record<string, unknown>, stream: boolean, clientWantsUsage: boolean): Exchange {
  const adapter = adapterFor(deployment.provider);
  const context: ChatContext = { deployment, body, stream, clientWantsUsage };
  return {
    deployment,
    request: adapter.buildChatRequest(context),
    parseJson(json) {
      const parsed = adapter.parseChatResponse(json, context);
      return { body: parsed.body, passThrough: parsed.body === json, usage: parsed.usage, outputText: completionTextOf(parsed.body) };
    },
    createStream: () => adapter.createStreamTranslator(context),
    errorMessage: (status, text) => adapter.errorMessage(status, text),
  };
}

export function completionTextOf(body: unknown): string {
  const choices = (body as { choices?: { message?: { content?: unknown; tool_calls?: unknown } }[] } | null)?.choices ?? [];
  return choices.map((choice) => (typeof choice.message?.content === 'string' ? choice.message.content : '') + (choice.message?.tool_calls ? JSON.stringify(choice.message.tool_calls) : '')).join('');
}

/** The requested output cap of a chat body (validated). */
export function requestedMaxOf(body: Record<string, unknown>): number | null {
  const requested = body.max_completion_tokens ?? body.max_tokens;
  return typeof requested === 'number' ? requested : null;
}

export const chatFormat: ApiFormat = {
  route: 'chat',

  async parse(context: FormatRequestContext): Promise<ParsedRequest> {
    const { body } = context;
    validateChatBody(body);
    const state: ChatState = { clientWantsUsage: Boolean((body.stream_options as { include_usage?: unknown } | undefined)?.include_usage) };
    return { stream: body.stream === true, promptTokens: estimateChatPromptTokens(body.messages), requestedMaxTokens: requestedMaxOf(body), state };
  },

  countPromptTokensExact(body) {
    return countChatPromptTokensExact(body.messages);
  },

  exchange(context, parsed, deployment) {
    return chatExchange(deployment, context.body, parsed.stream, (parsed.state as ChatState).clientWantsUsage);
  },

  renderError(error) {
    return { body: error.toEnvelope(), headers: error.headers };
  },

  streamError(error) {
    return [JSON.stringify(error.toEnvelope())];
  },

  withCost(payload: SseOut, figures: CostFigures): SseOut | null {
    const data = dataOf(payload);
    if (!data.includes('"usage"')) return null;
    let chunk: { usage?: unknown };
    try {
      chunk = JSON.parse(data) as { usage?: unknown };
    } catch {
      return null;
    }
    if (!chunk.usage || typeof chunk.usage !== 'object') return null;
    return JSON.stringify({ ...chunk, usage: addCostFields(chunk.usage as Record<string, unknown>, figures) });
  },
};
