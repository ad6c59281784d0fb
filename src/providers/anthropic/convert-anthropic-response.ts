/**
 * @module Anthropic Message → OpenAI `chat.completion`: text blocks joined into `content`,
 * `tool_use` blocks into `tool_calls`, thinking into `reasoning_content` (LiteLLM's field),
 * stop_reason → finish_reason, usage with the cache split.
 */
import type { TokenUsage } from '../../pricing/prices';
import { convertAnthropicUsage, toOpenAIUsage, type AnthropicUsage } from './convert-anthropic-usage';
import { mapAnthropicFinishReason } from './map-anthropic-finish-reason';

interface AnthropicContentBlock {
  type?: string;
  text?: string;
  thinking?: string;
  id?: string;
  name?: string;
  input?: unknown;
}

export interface AnthropicMessage {
  id?: string;
  model?: string;
  content?: AnthropicContentBlock[];
  stop_reason?: string | null;
  usage?: AnthropicUsage;
}

export function convertAnthropicResponse(message: AnthropicMessage, nowSeconds: number): { body: Record<string, unknown>; usage: TokenUsage | null } {
  let text = '';
  let reasoning = '';
  const toolCalls: Record<string, unknown>[] = [];
  for (const block of message.content ?? []) {
    if (block.type === 'text' && typeof block.text === 'string') text += block.text;
    else if (block.type === 'thinking' && typeof block.thinking === 'string') reasoning += block.thinking;
    else if (block.type === 'tool_use') {
      toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
    }
  }
  const assistant: Record<string, unknown> = { role: 'assistant', content: text || (toolCalls.length ? null : '') };
  if (toolCalls.length) assistant.tool_calls = toolCalls;
  if (reasoning) assistant.reasoning_content = reasoning;
  const usage = convertAnthropicUsage(message.usage);
  const body: Record<string, unknown> = {
    id: message.id,
    object: 'chat.completion',
    created: nowSeconds,
    model: message.model,
    choices: [{ index: 0, message: assistant, finish_reason: mapAnthropicFinishReason(message.stop_reason), logprobs: null }],
  };
  if (usage) body.usage = toOpenAIUsage(usage);
  return { body, usage };
}
