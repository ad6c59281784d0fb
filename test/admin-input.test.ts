/**
 * Crafted admin input gets a 4xx naming the problem, never a 500: a forged ledger cursor,
 * concurrent creates of one id, JSON nested thousands deep (REST bodies, GraphQL variables
 * over HTTP and graphql-ws), a subscription sent over HTTP, a persisted query whose hash
 * does not match. On real PostgreSQL, where the unique violations and cursor casts happen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import WebSocket from 'ws';
import { api, graphql, MASTER_KEY, openaiClient, startTestGateway } from './support/gateway';
import { wsUrl } from './support/live';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import type { RunningGateway } from '../src/server/gateway';

let database: TestDatabase;
let gateway: RunningGateway;

const deepArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

async function post(path: string, rawBody: string) {
  const response = await fetch(gateway.url + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` }, body: rawBody });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  database = await createTestDatabase();
  gateway = await startTestGateway({ databaseUrl: database.url });
  // A page of ledger rows, so the cursor is applied to a real query.
  await openaiClient(`${gateway.url}/v1`).chat.completions.create({ model: 'gpt-3.5-turbo', user: 'cursor-owner', messages: [{ role: 'user', content: 'hi' }] });
});

afterAll(async () => {
  await gateway?.stop();
  await database?.drop();
});

describe('ledger cursors', () => {
  it('refuses a crafted after cursor with a 400 naming it, on REST and GraphQL', async () => {
    const rest = await api<{ detail: { error: string } }>(gateway.url, 'GET', '/spend/logs?after=MXx4');
    expect(rest.status).toBe(400);
    expect(rest.body.detail.error).toMatch(/^Invalid value for after/);
    const viaGraphQL = await graphql(gateway.url, '{ spendLogs(after: "MXx4") { nodes { requestId } } }');
    expect(viaGraphQL.errors![0]!.extensions).toMatchObject({ code: 'bad_request', status: 400, param: 'after' });
  });

  it('still pages with the cursors it hands out', async () => {
    await openaiClient(`${gateway.url}/v1`).chat.completions.create({ model: 'gpt-3.5-turbo', user: 'cursor-owner', messages: [{ role: 'user', content: 'again' }] });
    const first = await api<unknown[]>(gateway.url, 'GET', '/spend/logs?end_user=cursor-owner&limit=1');
    const cursor = first.headers.get('x-next-cursor')!;
    expect(cursor).toBeTruthy();
    const second = await api<unknown[]>(gateway.url, 'GET', `/spend/logs?end_user=cursor-owner&limit=1&after=${cursor}`);
    expect(second.status).toBe(200);
    expect(second.body).toHaveLength(1);
    expect(second.body).not.toEqual(first.body);
  });
});

describe('concurrent creates of one id', () => {
  it('answers 10 parallel POST /customer/new of one id with one 200 and nine 400s naming the duplicate', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => api<{ error?: { message: string; param: string } }>(gateway.url, 'POST', '/customer/new', { user_id: 'twin' })));
    expect(results.map((r) => r.status).sort()).toEqual([200, ...Array(9).fill(400)]);
    for (const refused of results.filter((r) => r.status === 400)) expect(refused.body.error).toMatchObject({ message: expect.stringContaining('user_id=twin'), param: 'user_id' });
  });

  it('does the same for customers created through GraphQL and for budgets', async () => {
    const customers = await Promise.all(
      Array.from({ length: 10 }, () => graphql(gateway.url, 'mutation { createCustomer(input: { id: "gql-twin" }) { id } }')),
    );
    expect(customers.filter((r) => r.data?.createCustomer)).toHaveLength(1);
    for (const refused of customers.filter((r) => !r.data?.createCustomer)) expect(refused.errors![0]!.extensions).toMatchObject({ status: 400, param: 'user_id' });
    const budgets = await Promise.all(Array.from({ length: 10 }, () => api(gateway.url, 'POST', '/budget/new', { budget_id: 'twin-tier' })));
    expect(budgets.map((r) => r.status).sort()).toEqual([200, ...Array(9).fill(400)]);
  });
});

describe('deeply nested JSON', () => {
  it('refuses a REST body nested 5,000 deep with a 400', async () => {
    const refused = await post('/customer/new', `{"user_id": "deep", "alias": ${deepArray(5_000)}}`);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toMatch(/more than 64 levels deep/);
  });

  it('refuses GraphQL variables nested 5,000 deep, over HTTP and over graphql-ws', async () => {
    const query = 'mutation ($input: CreateBudgetInput!) { createBudget(input: $input) { id } }';
    const overHttp = await post('/graphql', `{"query": ${JSON.stringify(query)}, "variables": {"input": {"modelMaxBudget": ${deepArray(5_000)}}}}`);
    expect(overHttp.status).toBe(400);
    expect(JSON.stringify(overHttp.body)).toMatch(/more than 64 levels deep/);

    // Raw graphql-transport-ws frames: the nesting is in the JSON text the server parses.
    const socket = new WebSocket(wsUrl(gateway.url), 'graphql-transport-ws');
    const received: { type: string; payload?: { message: string }[] }[] = [];
    const next = () => new Promise<(typeof received)[number]>((resolve, reject) => {
      socket.once('message', (data) => resolve(JSON.parse(String(data))));
      socket.once('close', (code) => reject(new Error(`closed ${code}`)));
    });
    try {
      await once(socket, 'open');
      socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${MASTER_KEY}` } }));
      received.push(await next());
      socket.send(`{"id": "1", "type": "subscribe", "payload": {"query": ${JSON.stringify(query)}, "variables": {"input": {"modelMaxBudget": ${deepArray(5_000)}}}}}`);
      received.push(await next());
      expect(received.map((m) => m.type)).toEqual(['connection_ack', 'error']);
      expect(received[1]!.payload![0]!.message).toMatch(/variables object nests objects or arrays more than 64 levels deep/);
    } finally {
      socket.close();
    }
  });

  it('still accepts ordinary nesting', async () => {
    const accepted = await api(gateway.url, 'POST', '/budget/new', { budget_id: 'nested-ok', model_max_budget: { 'gpt-3.5-turbo': { max_budget: 1, budget_duration: '1d' } } });
    expect(accepted.status).toBe(200);
  });
});

describe('GraphQL requests the HTTP endpoint cannot serve', () => {
  it('refuses a subscription over HTTP with a 400 saying where subscriptions are', async () => {
    const refused = await post('/graphql', JSON.stringify({ query: 'subscription { spendUpdated { cost } }' }));
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ errors: [{ message: expect.stringMatching(/graphql-ws/), extensions: { code: 'BAD_REQUEST' } }] });
  });

  it('answers a null variable for an argument that cannot be null as bad input, not an internal error', async () => {
    const refused = await graphql(gateway.url, 'query ($first: Int) { customers(first: $first) { totalCount } }', { first: null });
    expect(refused.errors![0]).toMatchObject({ message: expect.stringMatching(/"first" of non-null type "Int!" must not be null/), extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('refuses a persisted query whose hash does not match with a 400 saying so', async () => {
    const refused = await post('/graphql', JSON.stringify({ query: '{ budgets { id } }', extensions: { persistedQuery: { version: 1, sha256Hash: 'deadbeef' } } }));
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ errors: [{ message: 'provided sha does not match query', extensions: { code: 'BAD_REQUEST' } }] });
  });
});
