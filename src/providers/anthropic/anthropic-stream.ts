/**
 * @module Anthropic streaming events → OpenAI `chat.completion.chunk` payloads, one upstream
 * event at a time (no buffering). message_start gives the prompt usage (with its cache split),
 * message_delta the final output count and stop reason; the usage chunk is added only when
 * the client asked for `stream_options.include_usage`.
 */
import type { TokenUsage } from '../../pricing/prices';
import type { ChatContext, SseEvent, StreamTranslator } from '../types';
import { convertAnthropicUsage, mergeAnthropicUsage, toOpenAIUsage, type AnthropicUsage } from './convert-anthropic-usage';
import { mapAnthropicFinishReason } from './map-anthropic-finish-reason';

interface AnthropicStreamEvent {
  type?: string;
  index?: number;
  message?: { id?: string; model?: string; usage?: AnthropicUsage };
  content_block?: { type?: string; id?: string; name?: string; text?: string };
  delta?: { type?: string; text?: string; partial_json?: string; thinking?: string; stop_reason?: string | null };
  usage?: AnthropicUsage;
  error?: { type?: string; message?: string };
}

export class AnthropicStreamTranslator implements StreamTranslator {
  usageComplete = false;
  finished = false;
  errored = false;
  private reported: AnthropicUsage | null = null;
  private id = 'chatcmpl-anthropic';
  private model: string;
  private readonly created: number;
  private text = '';
  /** Anthropic content-block index → OpenAI tool_calls index. */
  private readonly toolIndexOfBlock = new Map<number, number>();

  constructor(
    private readonly context: ChatContext,
    nowSeconds = Math.floor(Date.now() / 1000),
  ) {
    this.model = context.deployment.upstreamModel;
    this.created = nowSeconds;
  }

  get usage(): TokenUsage | null {
    return convertAnthropicUsage(this.reported);
  }

  get deliveredText(): string {
    return this.text;
  }

  onEvent(event: SseEvent): string[] {
    let data: AnthropicStreamEvent;
    try {
      data = JSON.parse(event.data) as AnthropicStreamEvent;
    } catch {
      return [];
    }
    switch (data.type ?? event.event) {
      case 'message_start':
        if (data.message?.id) this.id = data.message.id;
        if (data.message?.model) this.model = data.message.model;
        this.reported = mergeAnthropicUsage({}, data.message?.usage);
        return [this.chunk({ role: 'assistant', content: '' }, null)];
      case 'content_block_start':
        return this.onBlockStart(data);
      case 'content_block_delta':
        return this.onBlockDelta(data);
      case 'message_delta': {
        this.reported = mergeAnthropicUsage(this.reported ?? {}, data.usage);
        // message_delta comes after the last content block, with the final cumulative counts.
        this.usageComplete = this.reported.input_tokens !== undefined;
        const payloads = [this.chunk({}, mapAnthropicFinishReason(data.delta?.stop_reason))];
        const usage = this.usage;
        if (this.context.clientWantsUsage && usage) payloads.push(JSON.stringify({ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [], usage: toOpenAIUsage(usage) }));
        return payloads;
      }
      case 'message_stop':
        this.finished = true;
        return [];
      case 'error':
        this.errored = true;
        return [JSON.stringify({ error: { message: data.error?.message ?? 'Anthropic stream error', type: data.error?.type ?? 'upstream_error', param: null, code: data.error?.type ?? null } })];
      default:
        return []; // ping, content_block_stop, and event types added later
    }
  }

  finish(): string[] {
    this.finished = true;
    return ['[DONE]'];
  }

  private onBlockStart(data: AnthropicStreamEvent): string[] {
    const block = data.content_block;
    if (block?.type === 'tool_use') {
      const toolIndex = this.toolIndexOfBlock.size;
      this.toolIndexOfBlock.set(data.index ?? 0, toolIndex);
      this.text += block.name ?? '';
      return [this.chunk({ tool_calls: [{ index: toolIndex, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] }, null)];
    }
    if (block?.type === 'text' && block.text) {
      this.text += block.text;
      return [this.chunk({ content: block.text }, null)];
    }
    return [];
  }

  private onBlockDelta(data: AnthropicStreamEvent): string[] {
    const delta = data.delta;
    if (delta?.type === 'text_delta' && typeof delta.text === 'string') {
      this.text += delta.text;
      return [this.chunk({ content: delta.text }, null)];
    }
    if (delta?.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
      const toolIndex = this.toolIndexOfBlock.get(data.index ?? 0) ?? 0;
      this.text += delta.partial_json;
      if (!delta.partial_json) return [];
      return [this.chunk({ tool_calls: [{ index: toolIndex, function: { arguments: delta.partial_json } }] }, null)];
    }
    if (delta?.type === 'thinking_delta' && typeof delta.thinking === 'string') {
      this.text += delta.thinking;
      return [this.chunk({ reasoning_content: delta.thinking }, null)];
    }
    return []; // signature_delta, citations_delta: nothing an OpenAI client reads
  }

  private chunk(delta: Record<string, unknown>, finishReason: string | null): string {
    return JSON.stringify({ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }] });
  }
}
