/**
 * @module `POST /v1/messages` and `/v1/messages/count_tokens`: the Anthropic Messages API.
 * `anthropic/` deployments (or `model_info.messages_api: native`) get the request as sent;
 * every other deployment is reached through Chat Completions, both ways, streaming included.
 * Errors use Anthropic's envelope with the status and `error.type` its SDK understands.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Deployment } from '../../../config/load';
import { countChatPromptTokensExact, countTextTokens, countTextTokensExact, estimateChatPromptTokens } from '../../../pricing/tokens';
import type { SseOut, UpstreamRequest } from '../../../providers/types';
import type { GatewayError } from '../../../shared/errors';
import { chatExchange, completionTextOf } from '../chat';
import { addCostFields, dataOf, type ApiFormat, type CostFigures, type FormatRequestContext, type ParsedRequest } from '../types';
import { ChatToMessagesStream, fromChatCompletion } from './from-chat';
import { nativeMessagesExchange, nativeMessagesRequest } from './native';
import { promptMessagesOf, toChatRequest, validateMessagesBody } from './to-chat-request';

type Json = Record<string, unknown>;

export function isNativeMessages(deployment: Deployment): boolean {
  return deployment.messagesApi === 'native';
}

/** Anthropic's error types by status (what @anthropic-ai/sdk maps to its error classes). */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 405:
    case 415:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 529:
      return 'overloaded_error';
    default:
      return 'api_error';
  }
}

export function anthropicErrorBody(error: GatewayError): Json {
  return { type: 'error', error: { type: anthropicErrorType(error.status), message: error.message } };
}

interface MessagesState {
  chatBody: Json | null;
}

/** Tools count towards the prompt too (their schemas are sent to the model). */
function promptTokensOf(body: Json): number {
  return estimateChatPromptTokens(promptMessagesOf(body)) + (Array.isArray(body.tools) ? countTextTokens(JSON.stringify(body.tools)) : 0);
}

/** Fields count_tokens takes; Anthropic refuses the others (max_tokens, stream …). */
const COUNT_TOKENS_FIELDS = ['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers'];

/** count_tokens: forwarded to a native deployment, counted with the tokenizer elsewhere. */
export function countMessageTokens(body: Json, deployment: Deployment, headers: IncomingHttpHeaders): { inputTokens: number } | { request: UpstreamRequest } {
  if (!Array.isArray(body.messages) || body.messages.length === 0) validateMessagesBody({ ...body, max_tokens: 1 });
  if (isNativeMessages(deployment)) {
    const forwarded = Object.fromEntries(Object.entries(body).filter(([field]) => COUNT_TOKENS_FIELDS.includes(field)));
    return { request: nativeMessagesRequest(deployment, forwarded, headers, '/v1/messages/count_tokens') };
  }
  return { inputTokens: promptTokensOf(body) };
}

export const messagesFormat: ApiFormat = {
  route: 'messages',

  async parse(context: FormatRequestContext, deployment: Deployment): Promise<ParsedRequest> {
    const { body } = context;
    validateMessagesBody(body);
    const state: MessagesState = { chatBody: isNativeMessages(deployment) ? null : toChatRequest(body) };
    return { stream: body.stream === true, promptTokens: promptTokensOf(body), requestedMaxTokens: body.max_tokens as number, state };
  },

  async countPromptTokensExact(body) {
    const tools = Array.isArray(body.tools) ? await countTextTokensExact(JSON.stringify(body.tools)) : 0;
    return (await countChatPromptTokensExact(promptMessagesOf(body))) + tools;
  },

  exchange(context, parsed, deployment) {
    if (isNativeMessages(deployment)) return nativeMessagesExchange(deployment, context.body, context.headers);
    const state = parsed.state as MessagesState;
    state.chatBody ??= toChatRequest(context.body); // the first candidate was native
    const chat = chatExchange(deployment, state.chatBody, parsed.stream, true);
    const model = String(context.body.model);
    return {
      deployment,
      request: chat.request,
      parseJson(json) {
        const answer = chat.parseJson(json);
        return { body: fromChatCompletion(answer.body as Json, model, answer.usage), passThrough: false, usage: answer.usage, outputText: completionTextOf(answer.body) };
      },
      createStream: () => new ChatToMessagesStream(chat.createStream(), model),
      errorMessage: chat.errorMessage,
    };
  },

  renderError(error) {
    return { body: anthropicErrorBody(error), headers: error.headers };
  },

  streamError(error) {
    return [{ event: 'error', data: JSON.stringify(anthropicErrorBody(error)) }];
  },

  withCost(payload: SseOut, figures: CostFigures): SseOut | null {
    const data = dataOf(payload);
    if (!data.includes('"message_delta"')) return null;
    let event: { type?: unknown; usage?: unknown };
    try {
      event = JSON.parse(data) as typeof event;
    } catch {
      return null;
    }
    if (event.type !== 'message_delta' || !event.usage || typeof event.usage !== 'object') return null;
    const patched = JSON.stringify({ ...event, usage: addCostFields(event.usage as Json, figures) });
    return typeof payload === 'string' ? patched : { event: payload.event, data: patched };
  },
};
