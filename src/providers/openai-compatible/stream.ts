/**
 * @module Pass-through of an OpenAI-compatible SSE stream. Events go out unchanged, except the
 * usage the proxy asked for: it is read for billing and removed again when the client did not
 * ask for usage. Only events that mention "usage" or a finish reason are parsed (cheap scan).
 */
import type { TokenUsage } from '../../pricing/prices';
import type { ChatContext, SseEvent, StreamTranslator } from '../types';
import { convertOpenAIUsage } from './usage';

/** A non-null finish_reason, whatever the upstream's JSON spacing. */
const FINISH_REASON = /"finish_reason"\s*:\s*"/;

interface OpenAIChunk {
  usage?: unknown;
  choices?: { delta?: { content?: unknown; tool_calls?: unknown; reasoning_content?: unknown } }[];
  /** Groq reports stream usage here instead of (or besides) `usage`. */
  x_groq?: { usage?: unknown };
}

export class OpenAIStreamTranslator implements StreamTranslator {
  usage: TokenUsage | null = null;
  private doneSeen = false;
  private finishSeen = false;
  /** Delivered payloads, parsed for text only if the stream must be counted (ended early, no usage). */
  private readonly delivered: string[] = [];

  constructor(private readonly context: ChatContext) {}

  get usageComplete(): boolean {
    // OpenAI sends usage after the last finish_reason; a usage seen earlier is a running count.
    return this.usage !== null && this.finished;
  }

  /** A finish_reason ends the generation (the text is complete) even if [DONE] never comes. */
  get finished(): boolean {
    return this.finishSeen || this.doneSeen;
  }

  onEvent(event: SseEvent): string[] {
    const data = event.data;
    if (data === '[DONE]') {
      this.doneSeen = true;
      return [];
    }
    if (FINISH_REASON.test(data)) this.finishSeen = true;
    if (!data.includes('"usage"')) return this.deliver(data);
    let chunk: OpenAIChunk;
    try {
      chunk = JSON.parse(data) as OpenAIChunk;
    } catch {
      return this.deliver(data);
    }
    const usage = convertOpenAIUsage(chunk.usage) ?? convertOpenAIUsage(chunk.x_groq?.usage);
    if (usage) this.usage = usage;
    if (this.context.clientWantsUsage || !chunk.usage) return this.deliver(data);
    if (!chunk.choices || chunk.choices.length === 0) return []; // the usage-only chunk we added
    // Usage riding on a content chunk (Mistral, some vLLM builds): keep the content, drop usage.
    delete chunk.usage;
    return this.deliver(JSON.stringify(chunk));
  }

  finish(): string[] {
    this.doneSeen = true;
    return ['[DONE]'];
  }

  get deliveredText(): string {
    let text = '';
    for (const data of this.delivered) {
      try {
        const chunk = JSON.parse(data) as OpenAIChunk;
        for (const choice of chunk.choices ?? []) {
          const delta = choice.delta;
          if (typeof delta?.content === 'string') text += delta.content;
          if (typeof delta?.reasoning_content === 'string') text += delta.reasoning_content;
          if (Array.isArray(delta?.tool_calls)) text += toolCallText(delta.tool_calls);
        }
      } catch {
        /* not JSON: nothing billable */
      }
    }
    return text;
  }

  private deliver(data: string): string[] {
    this.delivered.push(data);
    return [data];
  }
}

/** The generated part of streamed tool calls: the function name and its argument text. */
function toolCallText(toolCalls: unknown[]): string {
  let text = '';
  for (const call of toolCalls) {
    const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    if (typeof fn?.name === 'string') text += fn.name;
    if (typeof fn?.arguments === 'string') text += fn.arguments;
  }
  return text;
}
