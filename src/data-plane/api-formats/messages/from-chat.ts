/**
 * @module Chat Completions → Anthropic Messages, JSON and stream. An answer becomes a `message`
 * with `text`, `tool_use` and `thinking` blocks; finish_reason → stop_reason; usage is split
 * the Anthropic way (`input_tokens` without the cached part). A stream becomes message_start,
 * content_block_start/delta/stop per block, then message_delta (stop reason, final usage) and
 * message_stop once the chat stream ended.
 */
import { randomBytes } from 'node:crypto';
import type { TokenUsage } from '../../../pricing/prices';
import type { SseEvent, SseOut, StreamTranslator } from '../../../providers/types';

type Json = Record<string, unknown>;

export function newMessageId(): string {
  return `msg_${randomBytes(12).toString('hex')}`;
}

const STOP_REASONS: Record<string, string> = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };

export function stopReasonOf(finishReason: unknown): string {
  return typeof finishReason === 'string' ? (STOP_REASONS[finishReason] ?? 'end_turn') : 'end_turn';
}

/** Anthropic's usage: `input_tokens` excludes cache reads and writes, which have their own fields. */
export function anthropicUsageOf(usage: TokenUsage | null): Json {
  if (!usage) return { input_tokens: 0, output_tokens: 0 };
  const cacheRead = usage.cachedPromptTokens ?? 0;
  const cacheWrite = usage.cacheWriteTokens ?? 0;
  return {
    input_tokens: Math.max(0, usage.promptTokens - cacheRead - cacheWrite),
    output_tokens: usage.completionTokens,
    cache_read_input_tokens: cacheRead,
    cache_creation_input_tokens: cacheWrite,
  };
}

function parseArguments(text: unknown): unknown {
  if (typeof text !== 'string' || !text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { arguments: text }; // the model wrote broken JSON: keep it visible rather than lose it
  }
}

interface ChatMessage {
  content?: unknown;
  reasoning_content?: unknown;
  tool_calls?: { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[];
}

export function fromChatCompletion(completion: Json, model: string, usage: TokenUsage | null): Json {
  const choice = (Array.isArray(completion.choices) ? completion.choices[0] : undefined) as { message?: ChatMessage; finish_reason?: unknown } | undefined;
  const message = choice?.message ?? {};
  const content: Json[] = [];
  if (typeof message.reasoning_content === 'string' && message.reasoning_content) content.push({ type: 'thinking', thinking: message.reasoning_content, signature: '' });
  if (typeof message.content === 'string' && message.content) content.push({ type: 'text', text: message.content });
  for (const call of message.tool_calls ?? []) content.push({ type: 'tool_use', id: String(call.id ?? ''), name: String(call.function?.name ?? ''), input: parseArguments(call.function?.arguments) });
  return { id: newMessageId(), type: 'message', role: 'assistant', model, content, stop_reason: stopReasonOf(choice?.finish_reason), stop_sequence: null, usage: anthropicUsageOf(usage) };
}

interface ChatChunk {
  choices?: { delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: unknown }[];
  error?: { message?: unknown; type?: unknown };
}

type BlockKind = 'text' | 'thinking' | `tool:${number}`;

export class ChatToMessagesStream implements StreamTranslator {
  private started = false;
  private blockIndex = -1;
  private openBlock: BlockKind | null = null;
  private finishReason: unknown = null;
  private sawError = false;

  constructor(
    private readonly inner: StreamTranslator,
    private readonly model: string,
    private readonly id = newMessageId(),
  ) {}

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
  get errored(): boolean {
    return this.sawError || Boolean(this.inner.errored);
  }

  onEvent(event: SseEvent): SseOut[] {
    const out: SseOut[] = [];
    for (const payload of this.inner.onEvent(event)) this.translate(typeof payload === 'string' ? payload : payload.data, out);
    return out;
  }

  finish(): SseOut[] {
    const out: SseOut[] = [];
    for (const payload of this.inner.finish()) this.translate(typeof payload === 'string' ? payload : payload.data, out);
    this.start(out);
    this.closeBlock(out);
    out.push(this.event('message_delta', { delta: { stop_reason: stopReasonOf(this.finishReason), stop_sequence: null }, usage: anthropicUsageOf(this.inner.usage) }));
    out.push(this.event('message_stop', {}));
    return out;
  }

  private event(type: string, fields: Json): SseOut {
    return { event: type, data: JSON.stringify({ type, ...fields }) };
  }

  private start(out: SseOut[]): void {
    if (this.started) return;
    this.started = true;
    out.push(this.event('message_start', { message: { id: this.id, type: 'message', role: 'assistant', model: this.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } } }));
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
      this.sawError = true;
      out.push(this.event('error', { error: { type: 'api_error', message: String(chunk.error.message ?? 'upstream error') } }));
      return;
    }
    this.start(out);
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta ?? {};
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content) {
        this.ensureBlock('thinking', { type: 'thinking', thinking: '', signature: '' }, out);
        out.push(this.event('content_block_delta', { index: this.blockIndex, delta: { type: 'thinking_delta', thinking: delta.reasoning_content } }));
      }
      if (typeof delta.content === 'string' && delta.content) {
        this.ensureBlock('text', { type: 'text', text: '' }, out);
        out.push(this.event('content_block_delta', { index: this.blockIndex, delta: { type: 'text_delta', text: delta.content } }));
      }
      for (const call of delta.tool_calls ?? []) {
        this.ensureBlock(`tool:${call.index ?? 0}`, { type: 'tool_use', id: call.id ?? '', name: call.function?.name ?? '', input: {} }, out);
        const args = call.function?.arguments;
        if (typeof args === 'string' && args) out.push(this.event('content_block_delta', { index: this.blockIndex, delta: { type: 'input_json_delta', partial_json: args } }));
      }
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
        this.finishReason = choice.finish_reason;
        this.closeBlock(out);
      }
    }
  }

  private ensureBlock(kind: BlockKind, block: Json, out: SseOut[]): void {
    if (this.openBlock === kind) return;
    this.closeBlock(out);
    this.openBlock = kind;
    this.blockIndex++;
    out.push(this.event('content_block_start', { index: this.blockIndex, content_block: block }));
  }

  private closeBlock(out: SseOut[]): void {
    if (this.openBlock === null) return;
    out.push(this.event('content_block_stop', { index: this.blockIndex }));
    this.openBlock = null;
  }
}
