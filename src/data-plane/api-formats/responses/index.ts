/**
 * @module `POST /v1/responses` (and `/responses`): the OpenAI Responses API. Deployments with a
 * native Responses endpoint (`openai/`, `azure/`, or `model_info.responses_api: native`) get
 * the request as sent; every other deployment is reached through Chat Completions, both ways,
 * streaming included. On translated deployments Tollgate keeps the responses it produced
 * (unless `store: false`) and resolves `previous_response_id` and `item_reference` from them,
 * for the key that created them only.
 */
import { randomBytes } from 'node:crypto';
import type { Deployment } from '../../../config/load';
import { countTextTokens, estimateChatPromptTokens } from '../../../pricing/tokens';
import type { SseOut } from '../../../providers/types';
import { GatewayError } from '../../../shared/errors';
import { chatExchange, completionTextOf } from '../chat';
import { addCostFields, dataOf, type ApiFormat, type CostFigures, type Exchange, type FormatRequestContext, type ParsedRequest } from '../types';
import { ChatToResponsesStream } from './chat-stream-to-responses';
import { fromChatCompletion } from './from-chat-response';
import { nativeResponsesExchange } from './native';
import type { ResponseStore } from './store';
import { inputItemsOf, toChatRequest, validateResponsesBody, type ResponseItem } from './to-chat-request';

type Json = Record<string, unknown>;

interface ResponsesState {
  responseId: string;
  createdAt: number;
  /** For translated deployments: the conversation sent (history, then this request's input). */
  items: ResponseItem[] | null;
  chatBody: Json | null;
}

const TERMINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

export function isNativeResponses(deployment: Deployment): boolean {
  return deployment.responsesApi === 'native';
}

/** Earlier turns and referenced items, resolved from the store for this key. */
async function resolveItems(store: ResponseStore | null, body: Json, keyHash: string): Promise<ResponseItem[]> {
  const input = body.input === undefined || body.input === null ? [] : inputItemsOf(body.input);
  let history: ResponseItem[] = [];
  const previous = body.previous_response_id;
  if (typeof previous === 'string' && previous) {
    const stored = store ? await store.get(previous, keyHash) : null;
    if (!stored) {
      throw new GatewayError('invalid_request', `previous_response_id "${previous}" is not a stored response of this key (it may have expired, or been created with "store": false).`, 'previous_response_id');
    }
    history = stored.items;
  }
  const referenced = input.filter((item) => item.type === 'item_reference').map((item) => String(item.id ?? ''));
  if (!referenced.length) return [...history, ...input];
  const found = store ? await store.items(referenced, keyHash) : new Map<string, Json>();
  return [
    ...history,
    ...input.map((item, index) => {
      if (item.type !== 'item_reference') return item;
      const resolved = found.get(String(item.id ?? ''));
      if (!resolved) throw new GatewayError('invalid_request', `input[${index}]: item_reference "${String(item.id)}" is not a stored item of this key.`, `input[${index}].id`);
      return resolved;
    }),
  ];
}

function translatedExchange(deployment: Deployment, request: Json, parsed: ParsedRequest, state: ResponsesState): Exchange {
  if (!state.chatBody) {
    // The first candidate was native; a failover reached a translated one.
    throw new GatewayError('invalid_request', `Deployment ${deployment.id} is reached through Chat Completions and cannot continue this request.`, 'model');
  }
  // Usage is part of the Responses protocol: always asked for, always in response.completed.
  const chat = chatExchange(deployment, state.chatBody, parsed.stream, true);
  return {
    deployment,
    request: chat.request,
    parseJson(json) {
      const answer = chat.parseJson(json);
      const body = fromChatCompletion(answer.body as Json, request, answer.usage, state.responseId, state.createdAt);
      return { body, passThrough: false, usage: answer.usage, outputText: completionTextOf(answer.body) };
    },
    createStream: () => new ChatToResponsesStream(chat.createStream(), request, state.responseId, state.createdAt),
    errorMessage: chat.errorMessage,
  };
}

/** The Responses format over a store of the responses it produced (null: nothing is kept). */
export function createResponsesFormat(store: ResponseStore | null): ApiFormat {
  return {
    route: 'responses',

    async parse(context: FormatRequestContext, deployment: Deployment): Promise<ParsedRequest> {
      const { body } = context;
      validateResponsesBody(body);
      const state: ResponsesState = { responseId: `resp_${randomBytes(16).toString('hex')}`, createdAt: Math.floor(Date.now() / 1000), items: null, chatBody: null };
      let promptTokens: number;
      if (isNativeResponses(deployment)) {
        // The upstream resolves its own state; the estimate counts what this request carries.
        promptTokens = countTextTokens(`${typeof body.instructions === 'string' ? body.instructions : ''}${JSON.stringify(body.input)}`);
      } else {
        state.items = await resolveItems(store, body, context.principal.keyHash);
        state.chatBody = toChatRequest(body, state.items);
        promptTokens = estimateChatPromptTokens(state.chatBody.messages);
      }
      const max = body.max_output_tokens;
      return { stream: body.stream === true, promptTokens, requestedMaxTokens: typeof max === 'number' ? max : null, state };
    },

    exchange(context, parsed, deployment) {
      if (isNativeResponses(deployment)) return nativeResponsesExchange(deployment, context.body);
      return translatedExchange(deployment, context.body, parsed, parsed.state as ResponsesState);
    },

    renderError(error) {
      return { body: error.toEnvelope(), headers: error.headers };
    },

    streamError(error) {
      return [{ event: 'error', data: JSON.stringify({ type: 'error', sequence_number: 0, code: error.code, message: error.message, param: error.param }) }];
    },

    withCost(payload: SseOut, figures: CostFigures): SseOut | null {
      const data = dataOf(payload);
      if (!data.includes('"usage"')) return null;
      let event: { type?: unknown; response?: { usage?: unknown } };
      try {
        event = JSON.parse(data) as typeof event;
      } catch {
        return null;
      }
      if (typeof event.type !== 'string' || !TERMINAL_EVENTS.has(event.type) || !event.response?.usage || typeof event.response.usage !== 'object') return null;
      const patched = JSON.stringify({ ...event, response: { ...event.response, usage: addCostFields(event.response.usage as Json, figures) } });
      return typeof payload === 'string' ? patched : { event: payload.event, data: patched };
    },

    async completed({ context, parsed, body, translator }) {
      const state = parsed.state as ResponsesState;
      if (!store || !state.items || context.body.store === false) return;
      const response = translator ? (translator instanceof ChatToResponsesStream ? translator.finalResponse : null) : (body as Json);
      if (!response) return;
      const output = (response.output as Json[] | undefined) ?? [];
      await store.put({ id: String(response.id), keyHash: context.principal.keyHash, response, items: [...state.items, ...output] });
    },
  };
}
