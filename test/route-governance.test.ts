/**
 * Every route governed the same way: one rpm window shared by chat, Responses and Messages,
 * with a `retry-after` read from the window; the budget left after a JSON answer (and after
 * its reservation on a stream, the exact figure in the usage event); the cost in the last
 * chat chunk; the client's `metadata` reaching OpenAI; an unknown route 404 for every key;
 * `tollgate.customer_id_sources` and `tollgate.unknown_customers: refuse`.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dollarsToPico, picoToDecimalString } from '../src/shared/money';
import { costOf, createCustomer, dollars, GPT, startApiRoutesHarness, type ApiRoutesHarness } from './support/api-routes';
import { api, MASTER_KEY } from './support/gateway';
import { ledgerRows } from './support/ledger';
import { countTextTokens } from '../src/pricing/tokens';
import { promptTokensOf } from './support/mock-upstream';

describe('every route metered and governed the same way', () => {
  let h: ApiRoutesHarness;
  let openai: OpenAI;
  let anthropic: Anthropic;
  const words = () => h.openai.behavior.reply.split(' ').length;

  beforeAll(async () => {
    h = await startApiRoutesHarness();
    openai = new OpenAI({ baseURL: h.v1, apiKey: MASTER_KEY, maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: h.gateway.url, apiKey: MASTER_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.reset());

  it('holds one rpm window across chat, responses and messages, and says when the next request fits', async () => {
    await api(h.gateway.url, 'POST', '/budget/new', { budget_id: 'rpm-3', rpm_limit: 3 });
    await createCustomer(h.gateway.url, 'rpm-mixed', { budget_id: 'rpm-3' });
    await openai.chat.completions.create({ model: 'gpt-native', user: 'rpm-mixed', messages: [{ role: 'user', content: 'one' }] });
    await openai.responses.create({ model: 'gpt-chat', input: 'two', safety_identifier: 'rpm-mixed' });
    const started = Date.now();
    await anthropic.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'three' }], metadata: { user_id: 'rpm-mixed' } });
    const refusals = [
      await openai.chat.completions.create({ model: 'gpt-native', user: 'rpm-mixed', messages: [{ role: 'user', content: 'four' }] }).catch((error: unknown) => error),
      await openai.responses.create({ model: 'gpt-native', input: 'four', user: 'rpm-mixed' }).catch((error: unknown) => error),
      await anthropic.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'four' }], metadata: { user_id: 'rpm-mixed' } }).catch((error: unknown) => error),
    ];
    for (const refusal of refusals) expect(refusal).toMatchObject({ status: 429 });
    expect(refusals[2]).toMatchObject({ error: { type: 'error', error: { type: 'rate_limit_error' } } });
    // The first request leaves the window 60 s after it was admitted: retry-after says so,
    // counted from now, not a fixed 60.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refused = await fetch(`${h.v1}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` }, body: JSON.stringify({ model: 'gpt-native', user: 'rpm-mixed', messages: [{ role: 'user', content: 'five' }] }) });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil((started + 60_000 - Date.now()) / 1000) + 1);
    expect(retryAfter).toBeLessThan(60);
    expect(h.openai.requests).toHaveLength(2);
    expect(h.anthropic.requests).toHaveLength(1);
    expect((await ledgerRows(h.gateway, 'rpm-mixed')).map((row) => row.endpoint)).toEqual(['chat', 'responses', 'messages']);
  });

  it('reports the budget left after a JSON answer, after the reservation on a stream, and the exact figure in the usage event', async () => {
    await createCustomer(h.gateway.url, 'budget-left', { max_budget: 0.01 });
    const maxPico = dollarsToPico(0.01);
    const first = await openai.chat.completions.create({ model: 'gpt-native', user: 'budget-left', messages: [{ role: 'user', content: 'How much is left?' }] }).withResponse();
    const firstCost = costOf(GPT, { input: promptTokensOf(h.openai.requests[0]!.body!), output: words() });
    expect(first.response.headers.get('x-litellm-response-cost')).toBe(picoToDecimalString(firstCost));
    expect(first.response.headers.get('x-tollgate-budget-remaining')).toBe(picoToDecimalString(maxPico - firstCost));

    const stream = await openai.chat.completions.create({ model: 'gpt-native', user: 'budget-left', max_tokens: 100, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'And now?' }] }).withResponse();
    // On a stream the header is written first: the budget left once this request's reservation is held.
    expect(Number(stream.response.headers.get('x-tollgate-budget-remaining'))).toBeLessThan(dollars(maxPico - firstCost));
    let usage: Record<string, unknown> | null = null;
    for await (const chunk of stream.data) if (chunk.usage) usage = chunk.usage as unknown as Record<string, unknown>;
    const secondCost = costOf(GPT, { input: promptTokensOf(h.openai.requests[1]!.body!), output: words() });
    expect(usage).toMatchObject({ cost: dollars(secondCost), budget_remaining: dollars(maxPico - firstCost - secondCost) });
  });

  it('charges a stream the upstream breaks like a broken chat stream, on every route, and tells the client in the route’s own way', async () => {
    h.openai.behavior.mode = 'reset-mid-stream';
    const cases = [
      { path: '/v1/responses', customer: 'broken-native', body: { model: 'gpt-native', input: 'break', stream: true, user: 'broken-native' }, error: 'event: error' },
      { path: '/v1/responses', customer: 'broken-translated', body: { model: 'gpt-chat', input: 'break', stream: true, user: 'broken-translated' }, error: 'event: error' },
      { path: '/v1/messages', customer: 'broken-messages', body: { model: 'gpt-native', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'break' }], metadata: { user_id: 'broken-messages' } }, error: 'event: error\ndata: {"type":"error","error":{"type":"api_error"' },
    ];
    for (const { path, customer, body, error } of cases) {
      const response = await fetch(h.gateway.url + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` }, body: JSON.stringify(body) });
      expect(response.status).toBe(200);
      expect(await response.text()).toContain(error);
      const [row] = await ledgerRows(h.gateway, customer);
      expect(row, customer).toMatchObject({ status: 'partial', cost_source: 'estimated', completion_tokens: countTextTokens('Hello from') });
      expect(row!.cost).toBeGreaterThan(0n);
    }
  });

  it('answers bad input on the new routes with a 4xx naming the field, in the route’s envelope, never a 500', async () => {
    const post = (path: string, body: unknown) => api<Record<string, unknown>>(h.gateway.url, 'POST', path, body);
    const responsesCases: [unknown, string | null][] = [
      [{ model: 'gpt-chat', input: 42 }, 'input'],
      [{ model: 'gpt-chat', input: [7] }, 'input[0]'],
      [{ model: 'gpt-chat', input: [{ role: 'wizard', content: 'x' }] }, 'input[0].role'],
      [{ model: 'gpt-chat', input: 'x', tools: 'none' }, 'tools'],
      [{ model: 'gpt-chat', input: 'x', max_output_tokens: -1 }, 'max_output_tokens'],
      [{ model: 'gpt-chat', input: 'x', stream: 'yes' }, 'stream'],
      [{ model: 'gpt-chat', input: 'x', text: { format: { type: 'xml' } } }, 'text.format.type'],
      [{ model: 'gpt-chat' }, 'input'],
      [{ model: 'gpt-chat', input: 'x', previous_response_id: 'resp_nope' }, 'previous_response_id'],
      [{ model: 'no-such-model', input: 'x' }, 'model'],
      [[1, 2], null],
    ];
    for (const [body, param] of responsesCases) {
      const response = await post('/v1/responses', body);
      expect(response.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(response.status, JSON.stringify(body)).toBeLessThan(500);
      expect((response.body.error as { param: string | null }).param, JSON.stringify(body)).toBe(param);
    }
    const messagesCases: unknown[] = [
      { model: 'gpt-chat', max_tokens: 10, messages: 'hi' },
      { model: 'gpt-chat', max_tokens: 10, messages: [{ role: 'user', content: 5 }] },
      { model: 'gpt-chat', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64' } }] }] },
      { model: 'gpt-chat', max_tokens: 10, messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'sometimes' } },
      { model: 'claude', max_tokens: 'ten', messages: [{ role: 'user', content: 'x' }] },
      { model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'x' }], metadata: { user_id: 'x'.repeat(300) } },
    ];
    for (const body of messagesCases) {
      const response = await post('/v1/messages', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body, JSON.stringify(body)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.any(String) } });
    }
    expect(h.openai.requests).toHaveLength(0);
    expect(h.anthropic.requests).toHaveLength(0);
  });

  it('passes the client’s metadata through to OpenAI and strips only what Tollgate owns', async () => {
    await openai.chat.completions.create({ model: 'gpt-native', messages: [{ role: 'user', content: 'tagged' }], metadata: { trace_id: 'abc' }, store: true, litellm_metadata: { tags: ['x'] } } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(h.openai.requests[0]!.body).toMatchObject({ metadata: { trace_id: 'abc' }, store: true });
    expect(h.openai.requests[0]!.body).not.toHaveProperty('litellm_metadata');
  });

  it('answers 404 to an unknown route for every key, before any key check', async () => {
    const inference = await api<{ key: string }>(h.gateway.url, 'POST', '/key/generate', { key_alias: 'inference-only', scope: 'inference' });
    expect(inference.status).toBe(200);
    for (const key of [MASTER_KEY, inference.body.key, 'sk-not-a-key']) {
      for (const path of ['/v1/assistants', '/v1/files', '/nothing-here']) {
        const response = await api(h.gateway.url, 'POST', path, {}, key);
        expect(response.status, `${path} with ${key}`).toBe(404);
      }
    }
    // A method a route does not take is a 405 naming the method it takes.
    const wrongMethod = await api(h.gateway.url, 'GET', '/v1/responses');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });
});

describe('customer ID sources, unknown customers and the budget status, configured', () => {
  let h: ApiRoutesHarness;
  let anthropic: Anthropic;

  beforeAll(async () => {
    h = await startApiRoutesHarness(`tollgate:
  customer_id_sources: ["header:x-litellm-customer-id", "safety_identifier", "user"]
  unknown_customers: refuse
  budget_exceeded_status: 429`);
    anthropic = new Anthropic({ baseURL: h.gateway.url, apiKey: MASTER_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('reads only the configured sources, in order, and refuses IDs that are not customers, naming how to create them', async () => {
    // metadata.user_id is not a source here: Claude Code's per-session blob is not a customer.
    const served = await anthropic.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: 'user_abc_account__session_123' } });
    expect(served.type).toBe('message');
    const openai = new OpenAI({ baseURL: h.v1, apiKey: MASTER_KEY, maxRetries: 0 });
    const refused = await openai.responses.create({ model: 'gpt-native', input: 'hi', safety_identifier: 'stranger', user: 'ignored-second' }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 403, error: { type: 'customer_not_found', message: expect.stringMatching(/stranger.*POST \/customer\/new/) } });
    await createCustomer(h.gateway.url, 'known');
    // safety_identifier comes before user in this configuration.
    const response = await openai.responses.create({ model: 'gpt-native', input: 'hi', safety_identifier: 'known', user: 'stranger' });
    expect(response.status).toBe('completed');
    expect(await ledgerRows(h.gateway, 'known')).toHaveLength(1);
    expect(await ledgerRows(h.gateway, 'stranger')).toHaveLength(0);
    const customers = await api<unknown[]>(h.gateway.url, 'GET', '/customer/list');
    expect(JSON.stringify(customers.body)).not.toContain('stranger');
  });

  it('refuses a budget with LiteLLM’s 429 when budget_exceeded_status says so', async () => {
    await createCustomer(h.gateway.url, 'compat-broke', { max_budget: 0 });
    const refused = await api<{ error: { type: string; code: string } }>(h.gateway.url, 'POST', '/v1/chat/completions', { model: 'gpt-native', user: 'compat-broke', messages: [{ role: 'user', content: 'hi' }] });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: 'budget_exceeded', code: '429' });
    expect(refused.headers.get('x-should-retry')).toBe('false');
  });
});
