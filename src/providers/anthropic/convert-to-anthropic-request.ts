/**
 * @module OpenAI chat request → Anthropic Messages request. System (and developer) messages
 * move to `system`; tool calls and tool results become `tool_use` / `tool_result` blocks;
 * consecutive messages of one role are merged (Anthropic alternates user and assistant);
 * `max_tokens` is required by Anthropic, so it defaults to the deployment's output cap.
 * OpenAI-only parameters Anthropic would reject (penalties, seed, logprobs …) are dropped.
 */
import { GatewayError } from '../../shared/errors';
import type { ChatContext } from '../types';

type Block = Record<string, unknown>;
interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

interface OpenAIMessage {
  role?: unknown;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: unknown;
  cache_control?: unknown;
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, param);
}

/** One OpenAI content part → one Anthropic block (text and images; `cache_control` kept for prompt caching). */
function convertPart(part: unknown, param: string): Block {
  const p = (part ?? {}) as { type?: unknown; text?: unknown; image_url?: { url?: unknown } | string; cache_control?: unknown };
  let block: Block;
  if (p.type === 'text' && typeof p.text === 'string') block = { type: 'text', text: p.text };
  else if (p.type === 'image_url') {
    const url = typeof p.image_url === 'string' ? p.image_url : p.image_url?.url;
    if (typeof url !== 'string') throw invalid(`${param}.image_url.url must be a string.`, param);
    const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
    block = data ? { type: 'image', source: { type: 'base64', media_type: data[1], data: data[2] } } : { type: 'image', source: { type: 'url', url } };
  } else throw invalid(`${param}: content part type "${String(p.type)}" is not supported by anthropic/ models (use "text" or "image_url").`, param);
  if (p.cache_control) block.cache_control = p.cache_control;
  return block;
}

function contentBlocks(content: unknown, param: string): Block[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  if (Array.isArray(content)) return content.map((part, index) => convertPart(part, `${param}[${index}]`));
  throw invalid(`${param} must be a string or an array of content parts.`, param);
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => ((part as { text?: unknown })?.text as string) ?? '').join('');
  return '';
}

function toolUseBlocks(toolCalls: unknown, param: string): Block[] {
  if (!Array.isArray(toolCalls)) return [];
  return toolCalls.map((call, index) => {
    const c = call as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
    const where = `${param}.tool_calls[${index}]`;
    if (typeof c?.id !== 'string' || typeof c.function?.name !== 'string') throw invalid(`${where} needs an "id" and a "function.name".`, where);
    let input: unknown = {};
    const args = c.function.arguments;
    if (typeof args === 'string' && args.trim()) {
      try {
        input = JSON.parse(args);
      } catch {
        throw invalid(`${where}.function.arguments is not valid JSON.`, `${where}.function.arguments`);
      }
    }
    return { type: 'tool_use', id: c.id, name: c.function.name, input };
  });
}

/** Splits OpenAI messages into Anthropic's `system` and alternating `messages`. */
export function convertMessages(messages: unknown[]): { system: Block[]; messages: AnthropicMessage[] } {
  const system: Block[] = [];
  const converted: AnthropicMessage[] = [];
  const push = (role: 'user' | 'assistant', blocks: Block[]) => {
    const last = converted[converted.length - 1];
    if (last && last.role === role) last.content.push(...blocks);
    else converted.push({ role, content: blocks });
  };
  messages.forEach((raw, index) => {
    const message = (raw ?? {}) as OpenAIMessage;
    const param = `messages[${index}]`;
    switch (message.role) {
      case 'system':
      case 'developer': {
        const blocks = contentBlocks(message.content, `${param}.content`).filter((block) => block.type === 'text');
        if (message.cache_control && blocks.length) blocks[blocks.length - 1]!.cache_control = message.cache_control;
        system.push(...blocks);
        break;
      }
      case 'user': {
        const blocks = contentBlocks(message.content, `${param}.content`);
        if (message.cache_control && blocks.length) blocks[blocks.length - 1]!.cache_control = message.cache_control;
        push('user', blocks);
        break;
      }
      case 'assistant':
        push('assistant', [...contentBlocks(message.content, `${param}.content`), ...toolUseBlocks(message.tool_calls, param)]);
        break;
      case 'tool':
        if (typeof message.tool_call_id !== 'string') throw invalid(`${param}.tool_call_id is required for role "tool".`, `${param}.tool_call_id`);
        push('user', [{ type: 'tool_result', tool_use_id: message.tool_call_id, content: textOf(message.content) }]);
        break;
      default:
        throw invalid(`${param}.role "${String(message.role)}" is not supported by anthropic/ models.`, `${param}.role`);
    }
  });
  return { system, messages: converted.filter((message) => message.content.length > 0) };
}

function convertTools(tools: unknown): Block[] | undefined {
  if (!Array.isArray(tools)) return undefined;
  return tools.map((tool, index) => {
    const fn = (tool as { function?: { name?: unknown; description?: unknown; parameters?: unknown } })?.function;
    if (typeof fn?.name !== 'string') throw invalid(`tools[${index}].function.name is required.`, `tools[${index}]`);
    const converted: Block = { name: fn.name, input_schema: fn.parameters ?? { type: 'object', properties: {} } };
    if (typeof fn.description === 'string') converted.description = fn.description;
    return converted;
  });
}

function convertToolChoice(choice: unknown, parallel: unknown): Block | undefined {
  let converted: Block | undefined;
  if (choice === 'auto') converted = { type: 'auto' };
  else if (choice === 'required') converted = { type: 'any' };
  else if (choice === 'none') converted = { type: 'none' };
  else if (choice && typeof choice === 'object') {
    const name = (choice as { function?: { name?: unknown } }).function?.name;
    if (typeof name !== 'string') throw invalid('tool_choice.function.name is required.', 'tool_choice');
    converted = { type: 'tool', name };
  }
  if (parallel === false) converted = { ...(converted ?? { type: 'auto' }), disable_parallel_tool_use: true };
  return converted;
}

export function toAnthropicRequest(context: ChatContext): Record<string, unknown> {
  const { body, deployment } = context;
  const n = body.n;
  if (n !== undefined && n !== null && n !== 1) throw invalid('"n" must be 1 for anthropic/ models (they return one choice).', 'n');
  const { system, messages } = convertMessages(body.messages as unknown[]);
  const request: Record<string, unknown> = {
    model: deployment.upstreamModel,
    messages,
    max_tokens: body.max_completion_tokens ?? body.max_tokens ?? deployment.maxOutputTokens,
  };
  if (system.length) request.system = system.some((block) => block.cache_control) ? system : system.map((block) => block.text).join('\n\n');
  if (body.temperature !== undefined && body.temperature !== null) request.temperature = body.temperature;
  if (body.top_p !== undefined && body.top_p !== null) request.top_p = body.top_p;
  if (typeof body.stop === 'string') request.stop_sequences = [body.stop];
  else if (Array.isArray(body.stop)) request.stop_sequences = body.stop;
  const tools = convertTools(body.tools);
  if (tools) request.tools = tools;
  const toolChoice = convertToolChoice(body.tool_choice, body.parallel_tool_calls);
  if (toolChoice) request.tool_choice = toolChoice;
  // The customer ID lets Anthropic attribute abuse to one end user, as OpenAI's `user` does.
  if (typeof body.user === 'string') request.metadata = { user_id: body.user };
  if (body.thinking && typeof body.thinking === 'object') request.thinking = body.thinking;
  if (context.stream) request.stream = true;
  return request;
}
