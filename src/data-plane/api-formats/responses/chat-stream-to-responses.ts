/**
 * @module Chat Completions stream → OpenAI Responses events, chunk by chunk: response.created
 * and in_progress first; a message item for text (output_item.added, content_part.added,
 * output_text.delta …), a function_call item per tool call (function_call_arguments.delta …);
 * each item is closed when the model finishes, and `response.completed` (or `incomplete`)
 * with the usage ends the stream. Usage, finish and delivered text come from the wrapped
 * chat translator, which already read the provider's own stream.
 */
import type { TokenUsage } from '../../../pricing/prices';
import type { SseEvent, SseOut, StreamTranslator } from '../../../providers/types';
import { finishResponse, functionCallItem, messageItem, newItemId, outputTextPart, reasoningItem, responseEnvelope } from './from-chat-response';

type Json = Record<string, unknown>;

interface OpenItem {
  outputIndex: number;
  item: Json;
  kind: 'message' | 'function_call' | 'reasoning';
  text: string;
}

interface ChatChunk {
  model?: string;
  choices?: { delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: unknown }[];
  error?: unknown;
}

export class ChatToResponsesStream implements StreamTranslator {
  private sequence = 0;
  private started = false;
  private response: Json;
  private readonly items: OpenItem[] = [];
  private message: OpenItem | null = null;
  private reasoning: OpenItem | null = null;
  private readonly toolItems = new Map<number, OpenItem>();
  private finishReason: unknown = null;
  private closed = false;
  errored = false;
  /** The finished response object, once the stream completed (stored for later turns). */
  finalResponse: Json | null = null;

  constructor(
    private readonly inner: StreamTranslator,
    request: Json,
    responseId: string,
    createdAt: number,
  ) {
    this.response = responseEnvelope(responseId, request, createdAt, String(request.model));
  }

  get usage(): TokenUsage | null {
    return this.inner.usage;
  }
  get usageComplete(): boolean {
    return this.inner.usageComplete;
  }
  get deliveredText(): string {
    return this.inner.deliveredText;
  }
  get finished(): boolean {
    return this.inner.finished;
  }

  onEvent(event: SseEvent): SseOut[] {
    const out: SseOut[] = [];
    for (const payload of this.inner.onEvent(event)) this.translate(typeof payload === 'string' ? payload : payload.data, out);
    if (this.inner.errored) this.errored = true;
    return out;
  }

  finish(): SseOut[] {
    const out: SseOut[] = [];
    for (const payload of this.inner.finish()) this.translate(typeof payload === 'string' ? payload : payload.data, out);
    this.start(out);
    this.closeItems(out);
    const finished = finishResponse(this.response, this.items.map((open) => open.item), this.finishReason, this.inner.usage);
    this.finalResponse = finished;
    out.push(this.event(finished.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: finished }));
    return out;
  }

  private event(type: string, fields: Json): SseOut {
    return { event: type, data: JSON.stringify({ type, sequence_number: this.sequence++, ...fields }) };
  }

  private start(out: SseOut[]): void {
    if (this.started) return;
    this.started = true;
    out.push(this.event('response.created', { response: this.response }));
    out.push(this.event('response.in_progress', { response: this.response }));
  }

  private translate(data: string, out: SseOut[]): void {
    if (data === '[DONE]') return;
    let chunk: ChatChunk;
    try {
      chunk = JSON.parse(data) as ChatChunk;
    } catch {
      return;
    }
    if (chunk.error) {
      const error = chunk.error as { message?: unknown; code?: unknown; type?: unknown };
      this.errored = true;
      out.push(this.event('error', { code: String(error.code ?? error.type ?? 'upstream_error'), message: String(error.message ?? 'upstream error'), param: null }));
      return;
    }
    if (typeof chunk.model === 'string' && !this.started) this.response = { ...this.response, model: chunk.model };
    this.start(out);
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta ?? {};
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content) this.onReasoning(delta.reasoning_content, out);
      if (typeof delta.content === 'string' && delta.content) this.onText(delta.content, out);
      for (const call of delta.tool_calls ?? []) this.onToolCall(call, out);
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
        this.finishReason = choice.finish_reason;
        this.closeItems(out);
      }
    }
  }

  private open(kind: OpenItem['kind'], item: Json, out: SseOut[]): OpenItem {
    const open: OpenItem = { outputIndex: this.items.length, item, kind, text: '' };
    this.items.push(open);
    out.push(this.event('response.output_item.added', { output_index: open.outputIndex, item }));
    return open;
  }

  private onReasoning(text: string, out: SseOut[]): void {
    if (!this.reasoning) {
      this.reasoning = this.open('reasoning', reasoningItem(newItemId('rs'), ''), out);
      out.push(this.event('response.reasoning_summary_part.added', { item_id: this.reasoning.item.id, output_index: this.reasoning.outputIndex, summary_index: 0, part: { type: 'summary_text', text: '' } }));
    }
    this.reasoning.text += text;
    out.push(this.event('response.reasoning_summary_text.delta', { item_id: this.reasoning.item.id, output_index: this.reasoning.outputIndex, summary_index: 0, delta: text }));
  }

  private onText(text: string, out: SseOut[]): void {
    if (!this.message) {
      this.message = this.open('message', messageItem(newItemId('msg'), '', 'in_progress'), out);
      out.push(this.event('response.content_part.added', { item_id: this.message.item.id, output_index: this.message.outputIndex, content_index: 0, part: outputTextPart('') }));
    }
    this.message.text += text;
    out.push(this.event('response.output_text.delta', { item_id: this.message.item.id, output_index: this.message.outputIndex, content_index: 0, delta: text, logprobs: [] }));
  }

  private onToolCall(call: NonNullable<NonNullable<ChatChunk['choices']>[number]['delta']>['tool_calls'] extends (infer T)[] | undefined ? T : never, out: SseOut[]): void {
    const index = call.index ?? 0;
    let open = this.toolItems.get(index);
    if (!open) {
      const callId = call.id ?? newItemId('fc');
      open = this.open('function_call', functionCallItem(newItemId('fc'), callId, call.function?.name ?? '', '', 'in_progress'), out);
      this.toolItems.set(index, open);
    }
    const args = call.function?.arguments;
    if (typeof args === 'string' && args) {
      open.text += args;
      out.push(this.event('response.function_call_arguments.delta', { item_id: open.item.id, output_index: open.outputIndex, delta: args }));
    }
  }

  /** Ends every open item (once), in output order. */
  private closeItems(out: SseOut[]): void {
    if (this.closed) return;
    this.closed = true;
    for (const open of this.items) {
      const id = open.item.id;
      if (open.kind === 'message') {
        out.push(this.event('response.output_text.done', { item_id: id, output_index: open.outputIndex, content_index: 0, text: open.text, logprobs: [] }));
        out.push(this.event('response.content_part.done', { item_id: id, output_index: open.outputIndex, content_index: 0, part: outputTextPart(open.text) }));
        open.item = messageItem(String(id), open.text);
      } else if (open.kind === 'function_call') {
        out.push(this.event('response.function_call_arguments.done', { item_id: id, output_index: open.outputIndex, arguments: open.text }));
        open.item = functionCallItem(String(id), String(open.item.call_id), String(open.item.name), open.text);
      } else {
        out.push(this.event('response.reasoning_summary_text.done', { item_id: id, output_index: open.outputIndex, summary_index: 0, text: open.text }));
        out.push(this.event('response.reasoning_summary_part.done', { item_id: id, output_index: open.outputIndex, summary_index: 0, part: { type: 'summary_text', text: open.text } }));
        open.item = reasoningItem(String(id), open.text);
      }
      out.push(this.event('response.output_item.done', { output_index: open.outputIndex, item: open.item }));
    }
  }
}
