/**
 * @module Anthropic Messages request → Chat Completions request, for deployments that are not
 * `anthropic/`. `system` becomes the system message; `text` and `image` blocks become content
 * parts; `tool_use` blocks become the assistant's `tool_calls` and `tool_result` blocks `tool`
 * messages (placed before the rest of their user turn, as Chat Completions requires);
 * `stop_sequences` → `stop`, `tool_choice` and `disable_parallel_tool_use` map one to one.
 * Server tools and documents have no Chat Completions form: a 400 names them.
 */
import { GatewayError } from '../../../shared/errors';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => Boolean(value) && typeof value === 'object' && !Array.isArray(value);

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, param);
}

function textOfBlocks(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((block, index) => {
      if (!isObject(block)) throw invalid(`${param}[${index}] must be an object.`, `${param}[${index}]`);
      if (block.type === 'text' && typeof block.text === 'string') return block.text;
      throw invalid(`${param}[${index}]: block type "${String(block.type)}" cannot be translated to Chat Completions here (use "text").`, `${param}[${index}].type`);
    })
    .join('');
}

function imagePart(block: Json, param: string): Json {
  const source = block.source;
  if (isObject(source) && source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string') {
    return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (isObject(source) && source.type === 'url' && typeof source.url === 'string') return { type: 'image_url', image_url: { url: source.url } };
  throw invalid(`${param}.source must be {"type":"base64","media_type","data"} or {"type":"url","url"}.`, `${param}.source`);
}

/** Anthropic messages → chat messages (the system message is added by the caller). */
export function messagesToChat(messages: unknown): Json[] {
  if (!Array.isArray(messages) || messages.length === 0) throw invalid('"messages" is required and must be a non-empty array.', 'messages');
  const converted: Json[] = [];
  messages.forEach((raw, index) => {
    const param = `messages[${index}]`;
    if (!isObject(raw)) throw invalid(`${param} must be an object with a "role".`, param);
    const { role, content } = raw;
    if (role !== 'user' && role !== 'assistant') throw invalid(`${param}.role must be "user" or "assistant".`, `${param}.role`);
    if (typeof content === 'string') {
      converted.push({ role, content });
      return;
    }
    if (!Array.isArray(content)) throw invalid(`${param}.content must be a string or an array of content blocks.`, `${param}.content`);
    const parts: Json[] = [];
    const toolCalls: Json[] = [];
    const toolResults: Json[] = [];
    content.forEach((block, blockIndex) => {
      const where = `${param}.content[${blockIndex}]`;
      if (!isObject(block)) throw invalid(`${where} must be an object.`, where);
      switch (block.type) {
        case 'text':
          if (typeof block.text !== 'string') throw invalid(`${where}.text must be a string.`, `${where}.text`);
          parts.push({ type: 'text', text: block.text });
          break;
        case 'image':
          if (role !== 'user') throw invalid(`${where}: images are only accepted in user turns.`, where);
          parts.push(imagePart(block, where));
          break;
        case 'tool_use':
          if (role !== 'assistant') throw invalid(`${where}: tool_use blocks belong to assistant turns.`, where);
          if (typeof block.id !== 'string' || typeof block.name !== 'string') throw invalid(`${where} needs an "id" and a "name".`, where);
          toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
          break;
        case 'tool_result':
          if (typeof block.tool_use_id !== 'string') throw invalid(`${where}.tool_use_id is required.`, `${where}.tool_use_id`);
          toolResults.push({ role: 'tool', tool_call_id: block.tool_use_id, content: (block.is_error === true ? 'Error: ' : '') + textOfBlocks(block.content, `${where}.content`) });
          break;
        case 'thinking':
        case 'redacted_thinking':
          break; // the model's earlier reasoning: a chat model cannot take it back
        default:
          throw invalid(`${where}: block type "${String(block.type)}" cannot be translated to Chat Completions (this deployment is not anthropic/).`, `${where}.type`);
      }
    });
    converted.push(...toolResults);
    if (role === 'assistant') {
      const text = parts.map((part) => part.text as string).join('');
      if (text || toolCalls.length) converted.push({ role, content: text || null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) });
    } else if (parts.length) {
      converted.push({ role, content: parts.every((part) => part.type === 'text') ? parts.map((part) => part.text as string).join('') : parts });
    }
  });
  return converted;
}

function toolsToChat(tools: unknown): Json[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw invalid('"tools" must be an array.', 'tools');
  return tools.map((tool, index) => {
    if (!isObject(tool)) throw invalid(`tools[${index}] must be an object.`, `tools[${index}]`);
    if (tool.type !== undefined && tool.type !== 'custom') {
      throw invalid(`tools[${index}]: the server tool "${String(tool.type)}" is not available on this deployment: it is translated to Chat Completions, which runs only client tools.`, `tools[${index}].type`);
    }
    if (typeof tool.name !== 'string') throw invalid(`tools[${index}].name is required.`, `tools[${index}].name`);
    const fn: Json = { name: tool.name, parameters: tool.input_schema ?? { type: 'object', properties: {} } };
    if (typeof tool.description === 'string') fn.description = tool.description;
    return { type: 'function', function: fn };
  });
}

function toolChoiceToChat(choice: unknown): { toolChoice?: unknown; parallel?: boolean } {
  if (choice === undefined || choice === null) return {};
  if (!isObject(choice)) throw invalid('"tool_choice" must be an object.', 'tool_choice');
  const parallel = choice.disable_parallel_tool_use === true ? false : undefined;
  switch (choice.type) {
    case 'auto':
      return { toolChoice: 'auto', parallel };
    case 'any':
      return { toolChoice: 'required', parallel };
    case 'none':
      return { toolChoice: 'none' };
    case 'tool':
      if (typeof choice.name !== 'string') throw invalid('tool_choice.name is required for type "tool".', 'tool_choice.name');
      return { toolChoice: { type: 'function', function: { name: choice.name } }, parallel };
    default:
      throw invalid(`tool_choice.type "${String(choice.type)}" is not one of auto, any, tool, none.`, 'tool_choice.type');
  }
}

export function validateMessagesBody(body: Json): void {
  if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) throw invalid('"max_tokens" is required and must be a positive integer.', 'max_tokens');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw invalid('"stream" must be a boolean.', 'stream');
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw invalid('"messages" is required and must be a non-empty array.', 'messages');
  if (body.system !== undefined && body.system !== null && typeof body.system !== 'string' && !Array.isArray(body.system)) throw invalid('"system" must be a string or an array of text blocks.', 'system');
}

/** The prompt messages only (system included), for counting tokens. */
export function promptMessagesOf(body: Json): Json[] {
  const messages: Json[] = [];
  const system = body.system === undefined || body.system === null ? '' : textOfBlocks(body.system, 'system');
  if (system) messages.push({ role: 'system', content: system });
  for (const message of messagesToChat(body.messages)) messages.push(message); // not push(...): 100k+ arguments overflow the stack
  return messages;
}

export function toChatRequest(body: Json): Json {
  const chat: Json = { model: body.model, messages: promptMessagesOf(body), max_tokens: body.max_tokens };
  if (body.stream === true) chat.stream = true;
  for (const field of ['temperature', 'top_p'] as const) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`"${field}" must be a number.`, field);
    chat[field] = value;
  }
  if (body.stop_sequences !== undefined && body.stop_sequences !== null) {
    if (!Array.isArray(body.stop_sequences) || body.stop_sequences.some((stop) => typeof stop !== 'string')) throw invalid('"stop_sequences" must be an array of strings.', 'stop_sequences');
    if (body.stop_sequences.length) chat.stop = body.stop_sequences;
  }
  const tools = toolsToChat(body.tools);
  const { toolChoice, parallel } = toolChoiceToChat(body.tool_choice); // checked even without tools
  if (tools?.length) {
    chat.tools = tools;
    if (toolChoice !== undefined) chat.tool_choice = toolChoice;
    if (parallel !== undefined) chat.parallel_tool_calls = parallel;
  }
  const userId = isObject(body.metadata) ? body.metadata.user_id : undefined;
  if (typeof userId === 'string' && userId) chat.user = userId;
  return chat;
}
