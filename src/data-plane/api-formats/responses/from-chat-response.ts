/**
 * @module Chat Completions answer → OpenAI Responses `response` object: text into a `message`
 * item with `output_text`, tool calls into `function_call` items, reasoning into a `reasoning`
 * item, finish_reason `length` into `status: incomplete`, usage into input/output tokens.
 * The request's own settings are echoed back, as OpenAI does.
 */
import { randomBytes } from 'node:crypto';
import type { TokenUsage } from '../../../pricing/prices';

type Json = Record<string, unknown>;

export function newItemId(prefix: 'resp' | 'msg' | 'fc' | 'rs'): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

/** Responses usage from our TokenUsage (cached prompt tokens, reasoning unknown here: 0). */
export function responsesUsage(usage: TokenUsage | null): Json | null {
  if (!usage) return null;
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedPromptTokens ?? 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

export function messageItem(id: string, text: string, status: 'in_progress' | 'completed' = 'completed'): Json {
  return { type: 'message', id, status, role: 'assistant', content: status === 'completed' ? [outputTextPart(text)] : [] };
}

export function outputTextPart(text: string): Json {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

export function functionCallItem(id: string, callId: string, name: string, args: string, status: 'in_progress' | 'completed' = 'completed'): Json {
  return { type: 'function_call', id, call_id: callId, name, arguments: args, status };
}

export function reasoningItem(id: string, text: string): Json {
  return { type: 'reasoning', id, summary: text ? [{ type: 'summary_text', text }] : [] };
}

/** The response skeleton: settings echoed from the request. */
export function responseEnvelope(id: string, request: Json, createdAt: number, model: string): Json {
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: 'in_progress',
    error: null,
    incomplete_details: null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    model,
    output: [],
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: request.previous_response_id ?? null,
    reasoning: request.reasoning ?? null,
    store: request.store !== false,
    temperature: request.temperature ?? null,
    text: request.text ?? { format: { type: 'text' } },
    tool_choice: request.tool_choice ?? 'auto',
    tools: request.tools ?? [],
    top_p: request.top_p ?? null,
    truncation: 'disabled',
    usage: null,
    user: request.user ?? null,
    safety_identifier: request.safety_identifier ?? null,
    metadata: request.metadata ?? {},
  };
}

/** Marks a response finished: `incomplete` when the output cap cut it off. */
export function finishResponse(response: Json, output: Json[], finishReason: unknown, usage: TokenUsage | null): Json {
  const incomplete = finishReason === 'length';
  return {
    ...response,
    status: incomplete ? 'incomplete' : 'completed',
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    output,
    usage: responsesUsage(usage),
  };
}

interface ChatChoiceMessage {
  content?: unknown;
  reasoning_content?: unknown;
  refusal?: unknown;
  tool_calls?: { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[];
}

export function fromChatCompletion(completion: Json, request: Json, usage: TokenUsage | null, responseId: string, createdAt: number): Json {
  const choice = (Array.isArray(completion.choices) ? completion.choices[0] : undefined) as { message?: ChatChoiceMessage; finish_reason?: unknown } | undefined;
  const message = choice?.message ?? {};
  const output: Json[] = [];
  if (typeof message.reasoning_content === 'string' && message.reasoning_content) output.push(reasoningItem(newItemId('rs'), message.reasoning_content));
  if (typeof message.content === 'string' && message.content) output.push(messageItem(newItemId('msg'), message.content));
  else if (typeof message.refusal === 'string' && message.refusal) {
    output.push({ type: 'message', id: newItemId('msg'), status: 'completed', role: 'assistant', content: [{ type: 'refusal', refusal: message.refusal }] });
  }
  for (const call of message.tool_calls ?? []) {
    output.push(functionCallItem(newItemId('fc'), String(call.id ?? newItemId('fc')), String(call.function?.name ?? ''), typeof call.function?.arguments === 'string' ? call.function.arguments : '{}'));
  }
  if (output.length === 0) output.push(messageItem(newItemId('msg'), ''));
  const model = typeof completion.model === 'string' ? completion.model : String(request.model);
  return finishResponse(responseEnvelope(responseId, request, createdAt, model), output, choice?.finish_reason, usage);
}
