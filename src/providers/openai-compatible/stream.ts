/**
 * @module Pass-through of an OpenAI-compatible SSE stream. Events go out unchanged, except the
 * usage-only chunk the proxy asked for: it is read for billing and removed again when the
 * client did not ask for usage. Only events that mention "usage" are parsed (cheap scan).
 */
import type { TokenUsage } from '../../pricing/prices';
import type { ChatContext, SseEvent, StreamTranslator } from '../types';
import { convertOpenAIUsage } from './usage';

export class OpenAIStreamTranslator implements StreamTranslator {
  usage: TokenUsage | null = null;
  finished = false;
  private readonly delivered: string[] = [];

  constructor(private readonly context: ChatContext) {}

  onEvent(event: SseEvent): string[] {
    const data = event.data;
    if (data === '[DONE]') {
      this.finished = true;
      return [];
    }
    if (!data.includes('"usage"')) {
      this.delivered.push(data);
      return [data];
    }
    let chunk: { usage?: unknown; choices?: unknown[] };
    try {
      chunk = JSON.parse(data);
    } catch {
      this.delivered.push(data);
      return [data];
    }
    const usage = convertOpenAIUsage(chunk.usage);
    if (usage) this.usage = usage;
    if (this.context.clientWantsUsage || !chunk.usage) {
      this.delivered.push(data);
      return [data];
    }
    if (!chunk.choices || chunk.choices.length === 0) return []; // the usage-only chunk we added
    delete chunk.usage;
    const rewritten = JSON.stringify(chunk);
    this.delivered.push(rewritten);
    return [rewritten];
  }

  finish(): string[] {
    this.finished = true;
    return ['[DONE]'];
  }

  get deliveredText(): string {
    let text = '';
    for (const data of this.delivered) {
      try {
        const chunk = JSON.parse(data) as { choices?: { delta?: { content?: unknown; tool_calls?: unknown } }[] };
        for (const choice of chunk.choices ?? []) {
          if (typeof choice.delta?.content === 'string') text += choice.delta.content;
          if (choice.delta?.tool_calls) text += JSON.stringify(choice.delta.tool_calls);
        }
      } catch {
        /* not JSON: nothing billable */
      }
    }
    return text;
  }
}
