/**
 * The seed guide's "Track customer spend" section, end to end over HTTP, on both stores:
 * metering exact to the pico-dollar, read-your-writes, streaming pass-through, restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, graphql, MASTER_KEY, openaiClient, ROOT, startTestGateway, testConfigYaml, TEST_INPUT_PRICE, TEST_OUTPUT_PRICE } from './support/gateway';
import { MockUpstream } from './support/mock-upstream';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { dollarsToPico, picoToDollars } from '../src/shared/money';
import { printGatewaySchema } from '../src/control-plane/graphql/schema';

const inputPico = dollarsToPico(TEST_INPUT_PRICE);
const outputPico = dollarsToPico(TEST_OUTPUT_PRICE);

describe.each(['pglite', 'postgresql'] as const)('foundation on %s', (store) => {
  let upstream: MockUpstream;
  let database: TestDatabase | null = null;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let yaml: string;

  beforeAll(async () => {
    upstream = await new MockUpstream().start();
    if (store === 'postgresql') database = await createTestDatabase();
    yaml = testConfigYaml({ upstreamBase: upstream.baseUrl });
    gateway = await startTestGateway({ yaml, databaseUrl: database?.url });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
    await database?.drop();
  });

  it('serves the seed curl and shows the spend in /customer/info with the seed shape', async () => {
    const response = await fetch(`${gateway.url}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-1234' },
      body: JSON.stringify({ model: 'azure-gpt-3.5', user: 'ishaan3', messages: [{ role: 'user', content: 'what time is it' }] }),
    });
    expect(response.status).toBe(200);
    const cost = Number(response.headers.get('x-litellm-response-cost'));
    expect(cost).toBeGreaterThan(0);
    const completion = (await response.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
    expect(completion.choices[0]!.message.content).toContain('what time is it');

    const info = await api<Record<string, unknown>>(gateway.url, 'GET', '/customer/info?end_user_id=ishaan3');
    expect(info.status).toBe(200);
    expect(Object.keys(info.body).sort()).toEqual(['alias', 'allowed_model_region', 'blocked', 'budget_id', 'default_model', 'litellm_budget_table', 'spend', 'user_id']);
    expect(info.body).toEqual({ user_id: 'ishaan3', blocked: false, alias: null, spend: cost, allowed_model_region: null, default_model: null, litellm_budget_table: null, budget_id: null });

    // The same customer again: its spend increases by the second request's cost.
    const again = await fetch(`${gateway.url}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-1234' },
      body: JSON.stringify({ model: 'azure-gpt-3.5', user: 'ishaan3', messages: [{ role: 'user', content: 'and now?' }] }),
    });
    const secondCost = dollarsToPico(again.headers.get('x-litellm-response-cost')!);
    const after = await api<{ spend: number }>(gateway.url, 'GET', '/end_user/info?end_user_id=ishaan3');
    expect(dollarsToPico(after.body.spend)).toBe(dollarsToPico(cost) + secondCost);
  });

  it('meters N requests of several customers exactly, in memory and in the ledger', async () => {
    const client = openaiClient(`${gateway.url}/v1`);
    const expected = new Map<string, bigint>();
    const customers = ['acme', 'globex', 'initech'];
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const user = customers[i % customers.length]!;
        const completion = await client.chat.completions.create({ model: 'upstream-gpt', user, messages: [{ role: 'user', content: `request number ${i} ${'x'.repeat(i * 7)}` }] });
        const usage = completion.usage!;
        const cost = BigInt(usage.prompt_tokens) * inputPico + BigInt(usage.completion_tokens) * outputPico;
        expected.set(user, (expected.get(user) ?? 0n) + cost);
      }),
    );
    for (const user of customers) {
      const info = await api<{ spend: number }>(gateway.url, 'GET', `/customer/info?end_user_id=${user}`);
      expect(info.body.spend).toBe(picoToDollars(expected.get(user)!));
    }
    await gateway.ledger.flush();
    const knex = gateway.database.orm.em.getConnection().getKnex();
    const rows = (await knex.raw(`select customer_id, sum(cost_pico)::text as total, count(*)::int as n from spend_ledger where customer_id in ('acme','globex','initech') group by customer_id`)).rows as { customer_id: string; total: string; n: number }[];
    for (const row of rows) {
      expect(BigInt(row.total)).toBe(expected.get(row.customer_id));
      expect(row.n).toBe(10);
    }
    const counters = (await knex.raw(`select customer_id, spend_pico::text as spend from spend_counters where customer_id in ('acme','globex','initech') and scope = ''`)).rows as { customer_id: string; spend: string }[];
    for (const row of counters) expect(BigInt(row.spend)).toBe(expected.get(row.customer_id));
    expect(upstream.requests.every((r) => r.headers.authorization === 'Bearer sk-upstream')).toBe(true);
  });

  it('streams chunk by chunk and does not leak the usage chunk it asked for', async () => {
    upstream.reset();
    upstream.behavior.chunkDelayMs = 5;
    const client = openaiClient(`${gateway.url}/v1`);
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'streamer', stream: true, messages: [{ role: 'user', content: 'stream please' }] });
    const chunks: string[] = [];
    let sawUsage = false;
    for await (const chunk of stream) {
      if (chunk.usage) sawUsage = true;
      chunks.push(chunk.choices[0]?.delta?.content ?? '');
    }
    expect(sawUsage).toBe(false);
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.join('')).toBe(upstream.behavior.reply);
    // Tollgate asked the provider for usage even though the client did not.
    expect((upstream.requests[0]!.body!.stream_options as { include_usage: boolean }).include_usage).toBe(true);
    const words = upstream.behavior.reply.split(' ').length;
    const prompt = Math.ceil('stream please'.length / 4);
    const info = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=streamer');
    expect(dollarsToPico(info.body.spend)).toBe(BigInt(prompt) * inputPico + BigInt(words) * outputPico);
    const logs = await api<{ cost_source: string }[]>(gateway.url, 'GET', '/spend/logs?end_user=streamer');
    expect(logs.body[0]!.cost_source).toBe('provider');
  });

  it('passes the provider\'s JSON bytes through to the client unchanged', async () => {
    upstream.reset();
    upstream.behavior.prettyJson = true;
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'upstream-gpt', user: 'bytes', messages: [{ role: 'user', content: 'exact bytes please' }] }),
    });
    const text = await response.text();
    expect(text.startsWith('{\n  "id": "chatcmpl-upstream-1"')).toBe(true);
    expect(JSON.parse(text)).toMatchObject({ system_fingerprint: 'fp_mock', usage: { prompt_tokens: 5 } });
    expect(Number(response.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    upstream.reset();
  });

  it('passes the usage chunk through when the client asks for it', async () => {
    const client = openaiClient(`${gateway.url}/v1`);
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'streamer2', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    let usage: unknown = null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toMatchObject({ prompt_tokens: 1 });
  });

  it('refuses bad keys with 401 in the OpenAI envelope', async () => {
    const client = openaiClient(`${gateway.url}/v1`, 'sk-wrong');
    await expect(client.chat.completions.create({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 401 });
    const none = await fetch(`${gateway.url}/chat/completions`, { method: 'POST', body: '{}' });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { type: 'auth_error', code: '401' } });
    const control = await api(gateway.url, 'GET', '/customer/info?end_user_id=ishaan3', undefined, 'sk-wrong');
    expect(control.status).toBe(401);
  });

  it('answers 404 with the LiteLLM envelope for an unknown customer', async () => {
    const info = await api(gateway.url, 'GET', '/customer/info?end_user_id=nobody-here');
    expect(info.status).toBe(404);
    expect(info.body).toEqual({ error: { message: 'End User Id=nobody-here does not exist in db', type: 'not_found', param: 'end_user_id', code: '404' } });
  });

  it('takes the customer ID from headers first, and rejects hostile IDs', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` };
    const body = { model: 'gpt-3.5-turbo', user: 'body-user', metadata: { user_id: 'meta-user' }, messages: [{ role: 'user', content: 'hi' }] };
    await fetch(`${gateway.url}/chat/completions`, { method: 'POST', headers: { ...headers, 'x-litellm-end-user-id': 'header-user' }, body: JSON.stringify(body) });
    expect((await api(gateway.url, 'GET', '/customer/info?end_user_id=header-user')).status).toBe(200);
    expect((await api(gateway.url, 'GET', '/customer/info?end_user_id=body-user')).status).toBe(404);
    const { user: _user, ...withoutUser } = body;
    await fetch(`${gateway.url}/chat/completions`, { method: 'POST', headers, body: JSON.stringify(withoutUser) });
    expect((await api(gateway.url, 'GET', '/customer/info?end_user_id=meta-user')).status).toBe(200);
    for (const user of ['x'.repeat(257), 'bad\u0000id', '   ', { nested: true }]) {
      const response = await fetch(`${gateway.url}/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ ...body, user }) });
      expect(response.status).toBe(400);
    }
  });

  it('rejects malformed requests with a 4xx that names the problem', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` };
    const cases: [string, number, RegExp][] = [
      ['{not json', 400, /not valid JSON/],
      ['[]', 400, /JSON object/],
      ['{"messages":[]}', 400, /model/],
      ['{"model":"gpt-3.5-turbo"}', 400, /messages/],
      ['{"model":"gpt-3.5-turbo","messages":[null]}', 400, /messages\[0\]/],
      ['{"model":"gpt-3.5-turbo","messages":[{"role":"user","content":"x"},{"content":"no role"}]}', 400, /messages\[1\].*role/],
      ['{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}', 404, /no-such-model/],
      ['{"model":"gpt-3.5-turbo","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}', 400, /max_tokens/],
    ];
    for (const [body, status, message] of cases) {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers, body });
      expect(response.status, body).toBe(status);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
    const huge = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers, body: 'x'.repeat(11 * 1024 * 1024) });
    expect(huge.status).toBe(413);
  });

  it('lists models and customers (GraphQL) from the same state', async () => {
    const models = await openaiClient(`${gateway.url}/v1`).models.list();
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['azure-gpt-3.5', 'gpt-3.5-turbo', 'mistral', 'upstream-gpt']));
    const result = await graphql<{ customer: { id: string; spend: number; blocked: boolean }; customers: { nodes: { id: string }[]; totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string } } }>(
      gateway.url,
      `query($id: ID!) { customer(id: $id) { id spend blocked budget { id } } customers(first: 2, search: "e") { nodes { id } totalCount pageInfo { hasNextPage endCursor } } }`,
      { id: 'ishaan3' },
    );
    const rest = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=ishaan3');
    expect(result.data!.customer).toMatchObject({ id: 'ishaan3', spend: rest.body.spend, blocked: false });
    expect(result.data!.customers.nodes).toHaveLength(2);
    expect(result.data!.customers.pageInfo.hasNextPage).toBe(true);
    const next = await graphql<{ customers: { nodes: { id: string }[] } }>(gateway.url, `query($after: String) { customers(first: 100, search: "e", after: $after) { nodes { id } } }`, { after: result.data!.customers.pageInfo.endCursor });
    expect(next.data!.customers.nodes.length).toBe(result.data!.customers.totalCount - 2);
  });

  it('keeps every dollar across a graceful restart', async () => {
    const before = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=acme');
    await gateway.stop();
    gateway = await startTestGateway({ yaml, databaseUrl: database?.url, dataDir: gateway.dataDir });
    const after = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=acme');
    expect(after.body.spend).toBe(before.body.spend);
    expect(after.body.spend).toBeGreaterThan(0);
  });
});

describe('schema.graphql', () => {
  it('is exactly what the code generates (run `npm run schema` after changing resolvers)', () => {
    expect(readFileSync(join(ROOT, 'schema.graphql'), 'utf8')).toBe(printGatewaySchema());
  });
});
