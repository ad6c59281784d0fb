/**
 * Upstream error bodies never reach the client as they came: an upstream that echoes the
 * request it got (headers and all) in a 4xx/5xx body must not hand the client the provider
 * key, whatever the provider shape (Bearer, Azure api-key, Anthropic x-api-key), whatever the
 * body (JSON error, plain text); configured secrets are cut too, and the status is kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeUpstreamServer } from './support/fake-upstream';
import { api, startTestGateway } from './support/gateway';

const OPENAI_KEY = 'sk-upstream-openai-7f3a9c2e41';
const AZURE_KEY = 'azure0b5e61d2c9f84417a3';
const ANTHROPIC_KEY = 'sk-ant-api03-echoed-4d2b';
const OTHER_KEY = 'other-deployment-key-91aa3'; // configured for a model this request does not use
const WEBHOOK_SECRET = 'whsec_c2VjcmV0LXZhbHVlLWZvci10ZXN0';
const MASTER = 'sk-1234';

/** Answers every request with the status in the `x-echo-status` model suffix, echoing the request. */
class EchoingUpstream extends FakeUpstreamServer {
  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of request) body += chunk;
    const model = (JSON.parse(body) as { model?: string }).model ?? '';
    const status = Number(/(\d{3})$/.exec(model)?.[1] ?? request.url?.match(/(\d{3})/)?.[1] ?? 500);
    // Secrets first: the client-facing message is capped, and a cap is not what should hide them.
    const credentials = ['authorization', 'api-key', 'x-api-key'].map((name) => `${name}=${String(request.headers[name])}`).join(' ');
    const echo = `request ${request.method} ${credentials} ${OTHER_KEY} ${WEBHOOK_SECRET} ${MASTER} headers ${JSON.stringify(request.headers)} raw ${request.rawHeaders.join('\n')}`;
    if (/stream/.test(model)) {
      // A 200 stream that fails half-way with an error event echoing the request.
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      if (/anthropic/.test(model) || request.headers['x-api-key']) {
        response.write(`event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model, content: [], stop_reason: null, usage: { input_tokens: 5, output_tokens: 0 } } })}\n\n`);
        response.write(`event: content_block_start\ndata: ${JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })}\n\n`);
        response.write(`event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'partial "error" answer' } })}\n\n`);
        response.end(`event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: echo } })}\n\n`);
      } else {
        response.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model, choices: [{ index: 0, delta: { role: 'assistant', content: 'partial "error"\nanswer' }, finish_reason: null }] })}\n\n`);
        response.end(`data: ${JSON.stringify({ error: { message: echo, type: 'server_error' } })}\n\n`);
      }
      return;
    }
    if (/text/.test(model)) {
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(echo);
    } else {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { message: echo, type: 'echo' } }));
    }
  }
}

const upstream = new EchoingUpstream();
let gateway: Awaited<ReturnType<typeof startTestGateway>>;

beforeAll(async () => {
  await upstream.start();
  const model = (name: string, target: string, key: string, extra = '') => `
  - model_name: ${name}
    litellm_params:
      model: ${target}
      api_base: ${upstream.base}
      api_key: ${key}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002${extra}`;
  const yaml = `model_list:${[
    model('openai-400', 'openai/echo-400', OPENAI_KEY),
    model('openai-500', 'openai/echo-500', OPENAI_KEY),
    model('openai-text-429', 'openai/echo-text-429', OPENAI_KEY),
    model('openai-401', 'openai/echo-401', OPENAI_KEY),
    model('azure-404', 'azure/echo-404', AZURE_KEY, '\n      api_version: 2024-06-01'),
    model('anthropic-529', 'anthropic/echo-529', ANTHROPIC_KEY),
    model('other', 'openai/other', OTHER_KEY),
    model('openai-stream', 'openai/echo-stream', OPENAI_KEY),
    model('anthropic-stream', 'anthropic/echo-stream', ANTHROPIC_KEY),
  ].join('')}
general_settings:
  master_key: ${MASTER}
`;
  gateway = await startTestGateway({ yaml, env: { WEBHOOK_SECRET } });
});

afterAll(async () => {
  await gateway?.stop();
  await upstream.stop();
});

describe('upstream errors', () => {
  const cases: [string, number][] = [
    ['openai-400', 400],
    ['openai-500', 502],
    ['openai-text-429', 429],
    ['openai-401', 502],
    ['azure-404', 404],
    ['anthropic-529', 503],
  ];
  for (const [model, status] of cases) {
    it(`${model}: keeps the status (${status}) and the message, without any secret`, async () => {
      const result = await api<{ error: { message: string; type: string; code: string } }>(gateway.url, 'POST', '/chat/completions', {
        model,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(result.status).toBe(status);
      expect(result.body.error.type).toBe('upstream_error');
      expect(result.body.error.code).toBe(String(status));
      const headerValues: string[] = [];
      result.headers.forEach((value) => headerValues.push(value));
      const text = JSON.stringify(result.body) + headerValues.join(' ');
      for (const secret of [OPENAI_KEY, AZURE_KEY, ANTHROPIC_KEY, OTHER_KEY, WEBHOOK_SECRET, MASTER, 'sk-upstream', 'echoed-4d2b']) expect(text).not.toContain(secret);
      expect(result.body.error.message).toMatch(/^Upstream .* answered \d{3}: .*request POST/); // the rest of the message is kept
      expect(result.body.error.message).toContain('[redacted]');
      expect(result.body.error.message.length).toBeLessThan(700);
    });
  }

  for (const [model, path] of [['openai-stream', '/chat/completions'], ['anthropic-stream', '/chat/completions'], ['anthropic-stream', '/v1/messages']] as const) {
    it(`${model} on ${path}: an error event sent mid-stream reaches the client without any secret, the output before it unchanged`, async () => {
      const body = path === '/v1/messages'
        ? { model, max_tokens: 20, stream: true, messages: [{ role: 'user', content: 'hi' }] }
        : { model, stream: true, messages: [{ role: 'user', content: 'hi' }] };
      const response = await fetch(gateway.url + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER}` }, body: JSON.stringify(body) });
      expect(response.status).toBe(200);
      const text = await response.text();
      for (const secret of [OPENAI_KEY, AZURE_KEY, ANTHROPIC_KEY, OTHER_KEY, WEBHOOK_SECRET, MASTER, 'sk-upstream', 'echoed-4d2b']) expect(text).not.toContain(secret);
      expect(text).toContain('[redacted]');
      expect(text).toContain('partial');
      if (model === 'openai-stream') expect(text).toContain(JSON.stringify('partial "error"\nanswer'));
    });
  }

  it('embeddings errors are cut the same way', async () => {
    const result = await api<{ error: { message: string } }>(gateway.url, 'POST', '/embeddings', { model: 'openai-400', input: 'hi' });
    expect(result.status).toBe(400);
    expect(JSON.stringify(result.body)).not.toContain(OPENAI_KEY);
  });
});
