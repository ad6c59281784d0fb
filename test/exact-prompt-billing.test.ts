/**
 * A provider that reports no usage: the prompt is billed at its exact count, not at the
 * admission's estimate (an upper bound, which above 8 KB of text is the text's byte count and
 * would overcharge the customer). Requests below the big-body threshold, JSON and streamed,
 * chat and Messages, against a real gateway process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { countTokens } from 'gpt-tokenizer';
import { FakeUpstreamServer } from './support/fake-upstream';
import { api, freshDataDir, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';

const REPLY = 'a short reply';

/** Answers without any usage, as some OpenAI-compatible servers do. */
class UsagelessUpstream extends FakeUpstreamServer {
  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of request) body += chunk;
    const stream = (JSON.parse(body) as { stream?: boolean }).stream === true;
    if (stream) {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model: 'gpt-test', choices: [{ index: 0, delta: { role: 'assistant', content: REPLY }, finish_reason: null }] })}\n\n`);
      response.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model: 'gpt-test', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
      response.end('data: [DONE]\n\n');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 0, model: 'gpt-test', choices: [{ index: 0, message: { role: 'assistant', content: REPLY }, finish_reason: 'stop' }] }));
  }
}

const upstream = new UsagelessUpstream();
let gateway: SpawnedGateway;
let database: TestDatabase;

beforeAll(async () => {
  await upstream.start();
  database = await createTestDatabase();
  gateway = await spawnGateway({ yaml: testConfigYaml({ upstreamBase: upstream.base }), dataDir: freshDataDir(), env: { DATABASE_URL: database.url } });
});

afterAll(async () => {
  await gateway?.stop();
  await upstream.stop();
  await database?.drop();
});

/** ~40 KB of English prose in a few messages: far above the estimate's exact allowance, far below the big-body path. */
function longMessages(): { role: string; content: string }[] {
  const paragraph = 'The quick brown fox jumps over the lazy dog while the customer reads its invoice. ';
  return [0, 1, 2, 3].map((i) => ({ role: i % 2 ? 'assistant' : 'user', content: paragraph.repeat(120) + `part ${i}` }));
}

async function ledgerRow(user: string): Promise<{ cost_source: string; prompt_tokens: number; completion_tokens: number }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const rows = await queryDatabase<{ cost_source: string; prompt_tokens: number; completion_tokens: number }>(database.url, 'select cost_source, prompt_tokens, completion_tokens from spend_ledger where customer_id = $1', [user]);
    if (rows.length) return rows[0]!;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no ledger row for ${user}`);
}

describe('a prompt billed without provider usage', () => {
  const messages = longMessages();
  // OpenAI's chat accounting, as the gateway's exact count: 3 to prime, 4 a message.
  const exactPrompt = messages.reduce((sum, message) => sum + 4 + countTokens(message.content), 3);
  const bytes = messages.reduce((sum, message) => sum + Buffer.byteLength(message.content), 0);

  it('is the exact count, not the upper-bound estimate (the count is well below the bytes)', () => {
    expect(exactPrompt * 3).toBeLessThan(bytes);
  });

  for (const stream of [false, true]) {
    it(`chat ${stream ? 'streamed' : 'JSON'}: ledger prompt tokens = the exact count`, async () => {
      const user = `exact-chat-${stream ? 'stream' : 'json'}`;
      const response = await fetch(`${gateway.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
        body: JSON.stringify({ model: 'upstream-gpt', user, stream, messages }),
      });
      expect(response.status).toBe(200);
      await response.text();
      const row = await ledgerRow(user);
      expect(row).toEqual({ cost_source: 'computed', prompt_tokens: exactPrompt, completion_tokens: countTokens(REPLY) });
    });
  }

  it('Messages translated through chat: the exact count of its prompt', async () => {
    const user = 'exact-messages';
    const response = await api(gateway.url, 'POST', '/v1/messages', { model: 'upstream-gpt', max_tokens: 50, metadata: { user_id: user }, messages });
    expect(response.status).toBe(200);
    const row = await ledgerRow(user);
    expect(row.cost_source).toBe('computed');
    expect(row.prompt_tokens).toBe(exactPrompt);
  });
});
