/**
 * @module OpenAI Responses request → Chat Completions request, for deployments that have no
 * Responses endpoint. `instructions` becomes the system message; `input` (a string or items:
 * messages, `function_call`, `function_call_output`) becomes messages; function tools,
 * `tool_choice`, `text.format`, `max_output_tokens`, sampling and `parallel_tool_calls` map
 * one to one. What Chat Completions cannot express (built-in tools, background runs, stored
 * prompts and conversations) is refused with a 400 naming it, never dropped.
 */
import { GatewayError } from '../../../shared/errors';

type Json = Record<string, unknown>;

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, param);
}

const isObject = (value: unknown): value is Json => Boolean(value) && typeof value === 'object' && !Array.isArray(value);

/** Request fields a translated deployment cannot honour, and why. */
const UNSUPPORTED_FIELDS: Record<string, (value: unknown) => boolean> = {
  background: (value) => value === true,
  conversation: (value) => value !== undefined && value !== null,
  prompt: (value) => value !== undefined && value !== null,
};

/** Items of a stored conversation, or of this request: what goes to the model, in order. */
export type ResponseItem = Json;

/** Normalises `input` into items (a string is one user message). */
export function inputItemsOf(input: unknown): ResponseItem[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  if (Array.isArray(input)) {
    return input.map((item, index) => {
      if (!isObject(item)) throw invalid(`input[${index}] must be an object.`, `input[${index}]`);
      return item;
    });
  }
  throw invalid('"input" is required: a string or an array of input items.', 'input');
}

function partToChat(part: unknown, param: string): Json {
  if (!isObject(part)) throw invalid(`${param} must be an object.`, param);
  switch (part.type) {
    case 'input_text':
    case 'output_text':
    case 'text':
      if (typeof part.text !== 'string') throw invalid(`${param}.text must be a string.`, `${param}.text`);
      return { type: 'text', text: part.text };
    case 'refusal':
      return { type: 'text', text: typeof part.refusal === 'string' ? part.refusal : '' };
    case 'input_image': {
      if (typeof part.image_url !== 'string') throw invalid(`${param}: only images given by "image_url" can be translated to Chat Completions (not "file_id").`, param);
      const image: Json = { url: part.image_url };
      if (typeof part.detail === 'string') image.detail = part.detail;
      return { type: 'image_url', image_url: image };
    }
    default:
      throw invalid(`${param}: content type "${String(part.type)}" cannot be translated to Chat Completions (use "input_text" or "input_image").`, `${param}.type`);
  }
}

function contentToChat(content: unknown, param: string, textOnly: boolean): unknown {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(`${param} must be a string or an array of content parts.`, param);
  const parts = content.map((part, index) => partToChat(part, `${param}[${index}]`));
  if (textOnly || parts.every((part) => part.type === 'text')) return parts.map((part) => part.text as string).join('');
  return parts;
}

function outputText(output: unknown): string {
  if (typeof output === 'string') return output;
  if (Array.isArray(output)) return output.map((part) => (isObject(part) && typeof part.text === 'string' ? part.text : '')).join('');
  return JSON.stringify(output ?? '');
}

/** Items → chat messages. Consecutive function calls join the assistant message before them. */
export function itemsToMessages(items: ResponseItem[]): Json[] {
  const messages: Json[] = [];
  items.forEach((item, index) => {
    const param = `input[${index}]`;
    const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
    switch (type) {
      case 'message': {
        const role = item.role;
        if (role === 'system' || role === 'developer') messages.push({ role: 'system', content: contentToChat(item.content, `${param}.content`, true) });
        else if (role === 'user') messages.push({ role: 'user', content: contentToChat(item.content, `${param}.content`, false) });
        else if (role === 'assistant') messages.push({ role: 'assistant', content: contentToChat(item.content, `${param}.content`, true) });
        else throw invalid(`${param}.role "${String(role)}" is not one of user, assistant, system, developer.`, `${param}.role`);
        break;
      }
      case 'function_call': {
        if (typeof item.call_id !== 'string' || typeof item.name !== 'string') throw invalid(`${param} (function_call) needs a "call_id" and a "name".`, param);
        const call = { id: item.call_id, type: 'function', function: { name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : JSON.stringify(item.arguments ?? {}) } };
        const last = messages[messages.length - 1];
        if (last && last.role === 'assistant') last.tool_calls = [...((last.tool_calls as unknown[]) ?? []), call];
        else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
        break;
      }
      case 'function_call_output':
        if (typeof item.call_id !== 'string') throw invalid(`${param} (function_call_output) needs a "call_id".`, `${param}.call_id`);
        messages.push({ role: 'tool', tool_call_id: item.call_id, content: outputText(item.output) });
        break;
      case 'reasoning':
        break; // the model's own scratchpad from an earlier turn: a chat model cannot take it back
      default:
        throw invalid(`${param}: item type "${String(type)}" cannot be translated to Chat Completions (built-in tool calls need a deployment with a native Responses API).`, `${param}.type`);
    }
  });
  return messages;
}

function toolsToChat(tools: unknown): Json[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw invalid('"tools" must be an array.', 'tools');
  return tools.map((tool, index) => {
    if (!isObject(tool)) throw invalid(`tools[${index}] must be an object.`, `tools[${index}]`);
    if (tool.type !== 'function') {
      throw invalid(`tools[${index}]: the built-in tool "${String(tool.type)}" is not available on this deployment: it is translated to Chat Completions, which runs only "function" tools.`, `tools[${index}].type`);
    }
    if (typeof tool.name !== 'string') throw invalid(`tools[${index}].name is required.`, `tools[${index}].name`);
    const fn: Json = { name: tool.name, parameters: tool.parameters ?? { type: 'object', properties: {} } };
    if (typeof tool.description === 'string') fn.description = tool.description;
    if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
    return { type: 'function', function: fn };
  });
}

function toolChoiceToChat(choice: unknown): unknown {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'auto' || choice === 'none' || choice === 'required') return choice;
  if (isObject(choice) && choice.type === 'function' && typeof choice.name === 'string') return { type: 'function', function: { name: choice.name } };
  throw invalid(`"tool_choice" ${JSON.stringify(choice)} cannot be translated to Chat Completions (use "auto", "none", "required" or {"type":"function","name":…}).`, 'tool_choice');
}

function responseFormatOf(text: unknown): Json | undefined {
  if (text === undefined || text === null) return undefined;
  if (!isObject(text)) throw invalid('"text" must be an object.', 'text');
  const format = text.format;
  if (format === undefined || format === null) return undefined;
  if (!isObject(format)) throw invalid('"text.format" must be an object.', 'text.format');
  if (format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type === 'json_schema') {
    const schema: Json = { name: format.name ?? 'response', schema: format.schema };
    if (typeof format.strict === 'boolean') schema.strict = format.strict;
    if (typeof format.description === 'string') schema.description = format.description;
    return { type: 'json_schema', json_schema: schema };
  }
  throw invalid(`"text.format.type" "${String(format.type)}" is not one of text, json_object, json_schema.`, 'text.format.type');
}

function optionalNumber(body: Json, field: string): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`"${field}" must be a number.`, field);
  return value;
}

/** Validates the fields every Responses request is read by, whatever the deployment. */
export function validateResponsesBody(body: Json): void {
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw invalid('"stream" must be a boolean.', 'stream');
  if (body.store !== undefined && body.store !== null && typeof body.store !== 'boolean') throw invalid('"store" must be a boolean.', 'store');
  const max = body.max_output_tokens;
  if (max !== undefined && max !== null && (!Number.isInteger(max) || (max as number) < 1)) throw invalid('"max_output_tokens" must be a positive integer.', 'max_output_tokens');
  if (body.previous_response_id !== undefined && body.previous_response_id !== null && typeof body.previous_response_id !== 'string') {
    throw invalid('"previous_response_id" must be a string.', 'previous_response_id');
  }
  if (body.instructions !== undefined && body.instructions !== null && typeof body.instructions !== 'string') throw invalid('"instructions" must be a string.', 'instructions');
  // Optional for the API (a stored prompt or conversation may stand in); a translated
  // deployment needs at least one item, which toChatRequest checks.
  if (body.input !== undefined && body.input !== null) inputItemsOf(body.input);
}

/**
 * The chat body for a Responses request whose earlier turns (`history`, from
 * `previous_response_id`) and referenced items are already resolved into `items`.
 */
export function toChatRequest(body: Json, items: ResponseItem[]): Json {
  for (const [field, unsupported] of Object.entries(UNSUPPORTED_FIELDS)) {
    if (unsupported(body[field])) throw invalid(`"${field}" is not available on this deployment: it is translated to Chat Completions, which has no equivalent.`, field);
  }
  const messages: Json[] = [];
  if (typeof body.instructions === 'string' && body.instructions) messages.push({ role: 'system', content: body.instructions });
  for (const message of itemsToMessages(items)) messages.push(message); // not push(...): 100k+ arguments overflow the stack
  if (messages.length === 0) throw invalid('"input" must hold at least one item.', 'input');
  const chat: Json = { model: body.model, messages };
  if (body.stream === true) chat.stream = true;
  const max = body.max_output_tokens;
  if (typeof max === 'number') chat.max_tokens = max;
  for (const field of ['temperature', 'top_p'] as const) {
    const value = optionalNumber(body, field);
    if (value !== undefined) chat[field] = value;
  }
  const tools = toolsToChat(body.tools);
  if (tools?.length) chat.tools = tools;
  const toolChoice = toolChoiceToChat(body.tool_choice);
  if (toolChoice !== undefined && tools?.length) chat.tool_choice = toolChoice;
  if (typeof body.parallel_tool_calls === 'boolean' && tools?.length) chat.parallel_tool_calls = body.parallel_tool_calls;
  const responseFormat = responseFormatOf(body.text);
  if (responseFormat) chat.response_format = responseFormat;
  if (typeof body.user === 'string') chat.user = body.user;
  if (isObject(body.metadata)) chat.metadata = body.metadata;
  if (isObject(body.reasoning) && typeof body.reasoning.effort === 'string') chat.reasoning_effort = body.reasoning.effort;
  return chat;
}
