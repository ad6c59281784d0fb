/** Helpers for provider unit tests: fixture loading and a minimal chat context. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Deployment } from '../config/load';
import type { ChatContext, SseEvent } from './types';

/** One SSE `data:` payload per line of a `*.chunks.txt` fixture (path relative to src/providers). */
export function fixtureEvents(relativePath: string): SseEvent[] {
  return readFileSync(join(__dirname, relativePath), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((data) => ({ data }));
}

export function contextFor(provider: string, clientWantsUsage: boolean): ChatContext {
  const deployment = { id: `${provider}#0`, modelName: 'm', provider, upstreamModel: 'upstream-model', maxOutputTokens: 100 } as Deployment;
  return { deployment, body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] }, stream: true, clientWantsUsage };
}

