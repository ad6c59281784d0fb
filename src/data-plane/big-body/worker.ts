/**
 * @module The body worker (a piscina thread): everything a big request body costs in CPU —
 * JSON.parse, the format's validation and estimate, translation, the outbound JSON, the exact
 * prompt count for billing, a big answer's parse — runs here, with the same format code the
 * main thread runs for small bodies. Nothing here does I/O.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { Deployment } from '../../config/load';
import type { Principal } from '../../governance/records';
import { countTextTokensExact } from '../../pricing/tokens';
import { GatewayError } from '../../shared/errors';
import { chatFormat } from '../api-formats/chat';
import { messagesFormat } from '../api-formats/messages';
import type { ApiFormat, FormatRequestContext, ParsedRequest } from '../api-formats/types';
import { parseJsonBody } from '../http-io';
import type { AnswerResult, AnswerTask, BigBodyRoute, BodyRef, BodyTask, CountTask, ErrorData, Head, PrepareResult, PrepareTask } from './protocol';

const FORMATS: Record<BigBodyRoute, ApiFormat> = { chat: chatFormat, messages: messagesFormat };

/** A value whose JSON is longer than this is left out of the head (an empty one in its place). */
const HEAD_VALUE_CHARS = 64 * 1024;
/** The head's values together: past this, every big or further value is left out. */
const HEAD_TOTAL_CHARS = 512 * 1024;

// The formats the worker runs read no principal (only the Responses store would, and it stays on the main thread).
const NO_PRINCIPAL = {} as Principal;

function errorData(error: unknown): ErrorData {
  // JSON.parse takes any depth; recursive code after it (stringify, translation) may not.
  if (error instanceof RangeError) error = new GatewayError('invalid_json', 'Request body nests objects or arrays too deeply to be processed.', null);
  if (error instanceof GatewayError) return { code: error.code, message: error.message, param: error.param, status: error.status, headers: error.headers };
  throw error;
}

function bodyText(ref: BodyRef): string {
  return Buffer.from(ref.bytes, 0, ref.length).toString('utf8');
}

/** A value's JSON length, or Infinity when it is plainly too big (or too deep) for the head. */
function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (value === null || typeof value !== 'object') return 8;
  if (Array.isArray(value) && value.length > HEAD_VALUE_CHARS / 2) return Infinity;
  try {
    return JSON.stringify(value).length;
  } catch {
    return Infinity; // nested too deep to serialise
  }
}

/**
 * The object with its big values replaced: an empty array or object, and for a string its
 * start, one character past the limit (a model name or customer ID that long is then still
 * refused as on the small path). At most HEAD_TOTAL_CHARS are kept in all.
 */
export function headOf(body: Record<string, unknown>): Head {
  const head: Head = {};
  let budget = HEAD_TOTAL_CHARS;
  for (const [field, value] of Object.entries(body)) {
    if (value === null || (typeof value !== 'object' && typeof value !== 'string')) {
      head[field] = value;
      continue;
    }
    const size = sizeOf(value);
    if (size <= HEAD_VALUE_CHARS && size <= budget) {
      head[field] = value;
      budget -= size;
    } else if (typeof value === 'string') {
      head[field] = value.slice(0, Math.min(HEAD_VALUE_CHARS + 1, Math.max(0, budget)));
      budget -= HEAD_VALUE_CHARS + 1;
    } else head[field] = Array.isArray(value) ? [] : {};
  }
  return head;
}

/** The format's state with its big values replaced as in the head. */
function stateHead(state: unknown): unknown {
  if (!state || typeof state !== 'object' || Array.isArray(state)) return state;
  const head: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(state as Record<string, unknown>)) head[field] = value && typeof value === 'object' && !Array.isArray(value) ? headOf(value as Record<string, unknown>) : value;
  return headOf(head);
}

function parseObject(ref: BodyRef): Record<string, unknown> {
  const parsed = parseJsonBody(bodyText(ref));
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new GatewayError('invalid_request', 'Request body must be a JSON object.', null);
  return parsed as Record<string, unknown>;
}

/** Bytes in an ArrayBuffer of their own, so that moving it gives away nothing else (Node pools small Buffers). */
function ownBytes(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes : new Uint8Array(bytes);
}

/** The result, with `bytes` moved (its ArrayBuffer changes owner) instead of copied. */
function moving<T extends object>(result: T, bytes: Uint8Array): T {
  return move({
    get [transferableSymbol]() {
      return [bytes.buffer];
    },
    get [valueSymbol]() {
      return result;
    },
  }) as unknown as T;
}

async function prepare(task: PrepareTask): Promise<PrepareResult> {
  let body: Record<string, unknown>;
  try {
    body = parseObject(task);
  } catch (error) {
    return { ok: false, stage: 'body', error: errorData(error) };
  }
  let head: Head;
  try {
    head = headOf(body);
  } catch (error) {
    return { ok: false, stage: 'body', error: errorData(error) };
  }
  const deployment: Deployment | undefined = typeof body.model === 'string' ? task.deployments[body.model] : undefined;
  if (!deployment) return { ok: true, head };
  const format = FORMATS[task.route];
  const context: FormatRequestContext = { requestId: '', principal: NO_PRINCIPAL, headers: task.headers as IncomingHttpHeaders, body };
  let parsed: ParsedRequest;
  let request;
  try {
    parsed = await format.parse(context, deployment);
    request = format.exchange(context, parsed, deployment).request;
  } catch (error) {
    return { ok: true, head, prepared: { ok: false, error: errorData(error) } };
  }
  const outbound = ownBytes(typeof request.body === 'string' ? request.body : '');
  // The 9 MB outbound body crosses by transfer, not by copy.
  return moving<PrepareResult>(
    {
      ok: true,
      head,
      prepared: {
        ok: true,
        deploymentId: deployment.id,
        parsed: { stream: parsed.stream, promptTokens: parsed.promptTokens, requestedMaxTokens: parsed.requestedMaxTokens, state: stateHead(parsed.state) },
        request: { url: request.url, method: request.method, headers: request.headers },
        body: outbound,
      },
    },
    outbound,
  );
}

/** The exact prompt tokens, as the route counts them (for billing when the provider reports no usage). */
async function count(task: CountTask): Promise<number> {
  const format = FORMATS[task.route];
  if (!format.countPromptTokensExact) throw new Error(`no exact prompt count for ${task.route}`);
  return format.countPromptTokensExact(parseObject(task));
}

async function answer(task: AnswerTask): Promise<AnswerResult> {
  let json: unknown;
  try {
    json = JSON.parse(bodyText(task));
  } catch {
    return { ok: false, error: { code: 'upstream_error', message: `Upstream ${task.deployment.id} returned a body that is not JSON.`, param: null, status: 502, headers: {} } };
  }
  const context: FormatRequestContext = { requestId: '', principal: NO_PRINCIPAL, headers: task.headers as IncomingHttpHeaders, body: task.head };
  const parsed: ParsedRequest = { stream: false, promptTokens: 0, requestedMaxTokens: null, state: task.state };
  let answered;
  try {
    answered = FORMATS[task.route].exchange(context, parsed, task.deployment).parseJson(json);
  } catch (error) {
    return { ok: false, error: errorData(error) };
  }
  const completionTokens = answered.usage ? 0 : await countTextTokensExact(answered.outputText);
  const result: AnswerResult = { ok: true, usage: answered.usage, completionTokens };
  if (answered.passThrough) return result;
  const body = ownBytes(JSON.stringify(answered.body));
  return moving<AnswerResult>({ ...result, body }, body);
}

export default function run(task: BodyTask): Promise<PrepareResult | number | AnswerResult> {
  if (task.op === 'prepare') return prepare(task);
  if (task.op === 'count') return count(task);
  return answer(task);
}
