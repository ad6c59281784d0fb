/** Fixture streams for the API-format translator tests (one SSE payload per line). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureEvents } from '../../providers/fixtures.test-support';
import type { SseEvent } from '../../providers/types';

/** Chat streams: the providers' text fixture, and a tool-call stream of our own. */
export function chatEvents(name: 'text' | 'tool'): SseEvent[] {
  if (name === 'text') return fixtureEvents('openai-compatible/__fixtures__/openai-text.chunks.txt');
  return formatFixture('openai-tool.chunks.txt');
}

/** A fixture of `__fixtures__/` here; `named` gives each event its payload's `type` as SSE name. */
export function formatFixture(file: string, named = false): SseEvent[] {
  return readFileSync(join(__dirname, '__fixtures__', file), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((data) => (named ? { event: (JSON.parse(data) as { type: string }).type, data } : { data }));
}
