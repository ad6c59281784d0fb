/**
 * The seed guide's "Set customer budgets" sections, as written, plus what LiteLLM gets wrong:
 * default budget, quick-start max_budget "0", pricing tiers, resets on time, a burst that
 * cannot overrun the budget, block/unblock, validation, rate limits, REST = GraphQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { api, graphql, MASTER_KEY, openaiClient, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

const SLOW_MODEL = `
  - model_name: slow-mock
    litellm_params:
      model: mock/gpt-3.5-turbo
      mock_latency_ms: 400`;

function chat(base: string, user: string, extra: Record<string, unknown> = {}, model = 'gpt-3.5-turbo') {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model, user, messages: [{ role: 'user', content: 'what time is it' }], ...extra }),
  });
}

describe.each(['pglite', 'postgresql'] as const)('budgets on %s', (store) => {
  let database: TestDatabase | null = null;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let base: string;
  let yaml: string;

  beforeAll(async () => {
    if (store === 'postgresql') database = await createTestDatabase();
    yaml = testConfigYaml({ models: SLOW_MODEL, extra: 'litellm_settings:\n  max_end_user_budget_id: default-tier\n' });
    gateway = await startTestGateway({ yaml, databaseUrl: database?.url });
    base = gateway.url;
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
  });

  it('reports a default budget id that does not exist yet, then applies it the moment it is created', async () => {
    const readiness = await fetch(`${base}/health/readiness`);
    expect(readiness.status).toBe(200);
    expect(await readiness.json()).toMatchObject({ default_budget: { budget_id: 'default-tier', exists: false }, warnings: [expect.stringContaining('default-tier')] });
    // Before the budget exists, unknown customers are unlimited.
    for (let i = 0; i < 3; i++) expect((await chat(base, 'early-bird')).status).toBe(200);

    const created = await api<Record<string, unknown>>(base, 'POST', '/budget/new', { budget_id: 'default-tier', max_budget: 10, rpm_limit: 2, tpm_limit: 1000 });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ budget_id: 'default-tier', max_budget: 10, rpm_limit: 2, tpm_limit: 1000, soft_budget: null, budget_duration: null });
    expect(await (await fetch(`${base}/health/readiness`)).json()).toMatchObject({ default_budget: { exists: true }, warnings: [] });

    // The seed's test: a customer without a budget of its own is held to the default limits.
    const client = openaiClient(`${base}/v1`);
    const first = await client.chat.completions.create({ model: 'gpt-3.5-turbo', user: 'my-customer-id', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(first.response.headers.get('x-ratelimit-end_user-limit-requests')).toBe('2');
    expect(first.response.headers.get('x-ratelimit-end_user-remaining-requests')).toBe('1');
    expect(first.response.headers.get('x-ratelimit-end_user-limit-tokens')).toBe('1000');
    expect(Number(first.response.headers.get('x-ratelimit-end_user-remaining-tokens'))).toBeLessThan(1000);
    expect((await chat(base, 'my-customer-id')).status).toBe(200);
    const third = await chat(base, 'my-customer-id');
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await third.json()) as { error: { type: string; code: string; message: string } };
    expect(body.error).toMatchObject({ type: 'rate_limit_exceeded', code: '429' });
    expect(body.error.message).toContain('my-customer-id');
    expect(body.error.message).toContain('requests');

    // Each customer on the default budget has its own counters.
    expect((await chat(base, 'another-customer')).status).toBe(200);
    // /customer/info shows the budget in force.
    const info = await api<{ litellm_budget_table: { budget_id: string }; budget_id: string | null }>(base, 'GET', '/customer/info?end_user_id=my-customer-id');
    expect(info.body.litellm_budget_table.budget_id).toBe('default-tier');
    expect(info.body.budget_id).toBeNull();
  });

  it('refuses at once a customer created with "max_budget": "0" (quick start)', async () => {
    const created = await api<Record<string, unknown>>(base, 'POST', '/customer/new', { user_id: 'ishaan-jaff-48', max_budget: '0' });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ user_id: 'ishaan-jaff-48', blocked: false, spend: 0, litellm_budget_table: { max_budget: 0 } });
    let calls = 0;
    const client = new OpenAI({
      baseURL: `${base}/v1`,
      apiKey: MASTER_KEY,
      fetch: (url, init) => {
        calls++;
        return fetch(url, init);
      },
    }); // default retries on: x-should-retry must stop them
    const error = await client.chat.completions.create({ model: 'gpt-3.5-turbo', user: 'ishaan-jaff-48', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.status).toBe(402); // no SDK retries a 402 (tollgate.budget_exceeded_status: 429 for LiteLLM's)
    expect(calls).toBe(1);
    expect(error.headers.get('x-should-retry')).toBe('false');
    expect(error.error).toMatchObject({ type: 'budget_exceeded', code: '402' });
    expect(error.error.message).toMatch(/ishaan-jaff-48.*Spend: \$0.*Max budget: \$0/);
    const info = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=ishaan-jaff-48');
    expect(info.body.spend).toBe(0);
  });

  it('applies a pricing tier to every customer on it, each with its own spend (seed steps 1–3)', async () => {
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'my-free-tier', max_budget: 4 })).status).toBe(200);
    const created = await api<{ budget_id: string; litellm_budget_table: { budget_id: string; max_budget: number } }>(base, 'POST', '/customer/new', { user_id: 'tier-customer', budget_id: 'my-free-tier' });
    expect(created.body.budget_id).toBe('my-free-tier');
    expect(created.body.litellm_budget_table).toMatchObject({ budget_id: 'my-free-tier', max_budget: 4 });
    await api(base, 'POST', '/end_user/new', { user_id: 'tier-customer-2', budget_id: 'my-free-tier' });

    const client = openaiClient(base);
    const completion = await client.chat.completions.create({
      model: 'gpt-3.5-turbo',
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: 'Hello!' },
      ],
      user: 'tier-customer',
    });
    expect(completion.choices[0]!.message.role).toBe('assistant');
    const one = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=tier-customer');
    const two = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=tier-customer-2');
    expect(one.body.spend).toBeGreaterThan(0);
    expect(two.body.spend).toBe(0);

    // Lowering the tier's cap below what tier-customer spent stops it, and only it.
    await api(base, 'POST', '/budget/update', { budget_id: 'my-free-tier', max_budget: one.body.spend });
    expect((await chat(base, 'tier-customer')).status).toBe(402);
    expect((await chat(base, 'tier-customer-2')).status).toBe(200);
    const list = await api<{ budget_id: string; max_budget: number }[]>(base, 'GET', '/budget/list');
    expect(list.body.find((b) => b.budget_id === 'my-free-tier')!.max_budget).toBe(one.body.spend);
  });

  it('holds a 40-request burst to the budget: spend <= max_budget + one request', async () => {
    // Price one request exactly (max_tokens makes the reservation exact).
    const probe = await chat(base, 'burst-probe', { max_tokens: 5 });
    const cost = dollarsToPico((await probe.headers.get('x-litellm-response-cost'))!);
    expect(cost).toBeGreaterThan(0n);
    const maxBudget = cost * 10n;
    await api(base, 'POST', '/customer/new', { user_id: 'burst', max_budget: picoToDollars(maxBudget) });
    const statuses = await Promise.all(Array.from({ length: 40 }, () => chat(base, 'burst', { max_tokens: 5 }).then(async (r) => (await r.arrayBuffer(), r.status))));
    const ok = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s !== 200 && s !== 402)).toEqual([]);
    const info = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=burst');
    const spend = dollarsToPico(info.body.spend);
    expect(spend).toBe(cost * BigInt(ok));
    expect(spend <= maxBudget + cost).toBe(true);
    expect(ok).toBe(10);
    // And the ledger agrees with the counter to the pico-dollar.
    const logs = await api<{ spend: number }[]>(base, 'GET', '/spend/logs?end_user=burst&limit=100');
    expect(logs.body.reduce((sum, row) => sum + dollarsToPico(row.spend), 0n)).toBe(spend);
  });

  it('resets spend exactly at budget_reset_at, keeping the past period queryable', async () => {
    const probe = await chat(base, 'reset-probe', { max_tokens: 5 });
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    const created = await api<{ budget_reset_at: string }>(base, 'POST', '/budget/new', { budget_id: 'two-seconds', max_budget: picoToDollars(cost), budget_duration: '2s' });
    await api(base, 'POST', '/customer/new', { user_id: 'resetter', budget_id: 'two-seconds' });
    // Start right after a reset so the whole test fits in one period.
    const resetAt = new Date(created.body.budget_reset_at).getTime();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, resetAt - Date.now()) + 50));
    expect((await chat(base, 'resetter', { max_tokens: 5 })).status).toBe(200);
    expect((await chat(base, 'resetter', { max_tokens: 5 })).status).toBe(402);
    const info = await api<{ spend: number; litellm_budget_table: { budget_reset_at: string } }>(base, 'GET', '/customer/info?end_user_id=resetter');
    expect(dollarsToPico(info.body.spend)).toBe(cost);
    const nextReset = new Date(info.body.litellm_budget_table.budget_reset_at).getTime();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, nextReset - Date.now()) + 50));
    expect((await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=resetter')).body.spend).toBe(0);
    expect((await chat(base, 'resetter', { max_tokens: 5 })).status).toBe(200);
    const periods = await graphql<{ spendPeriods: { spend: number; periodStart: string }[] }>(base, `query { spendPeriods(customerId: "resetter") { spend periodStart } }`);
    expect(periods.data!.spendPeriods).toHaveLength(2);
    expect(periods.data!.spendPeriods.map((p) => dollarsToPico(p.spend))).toEqual([cost, cost]);
  });

  it('blocks and unblocks for real, idempotently', async () => {
    expect((await chat(base, 'blocky')).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const blocked = await api<{ blocked_users: { user_id: string; blocked: boolean }[] }>(base, 'POST', '/customer/block', { user_ids: ['blocky', 'never-seen'] });
      expect(blocked.status).toBe(200);
      expect(blocked.body.blocked_users.map((u) => [u.user_id, u.blocked])).toEqual([['blocky', true], ['never-seen', true]]);
    }
    const refused = await chat(base, 'blocky');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { type: 'customer_blocked', code: '403', message: expect.stringContaining('blocky') } });
    for (let i = 0; i < 2; i++) expect((await api(base, 'POST', '/end_user/unblock', { user_ids: ['blocky'] })).status).toBe(200);
    expect((await chat(base, 'blocky')).status).toBe(200);
    // /customer/update can set blocked back to false (LiteLLM cannot).
    await api(base, 'POST', '/customer/update', { user_id: 'never-seen', blocked: true });
    const unblocked = await api<{ blocked: boolean }>(base, 'POST', '/customer/update', { user_id: 'never-seen', blocked: false });
    expect(unblocked.body.blocked).toBe(false);
    expect((await chat(base, 'never-seen')).status).toBe(200);
  });

  it('lets /customer/update set max_budget to 0, and to a tier, and refuses both at once', async () => {
    await api(base, 'POST', '/customer/new', { user_id: 'updatable', alias: 'Up' });
    const zero = await api<{ litellm_budget_table: { max_budget: number } }>(base, 'POST', '/customer/update', { user_id: 'updatable', max_budget: 0 });
    expect(zero.body.litellm_budget_table.max_budget).toBe(0);
    expect((await chat(base, 'updatable')).status).toBe(402);
    const tier = await api<{ budget_id: string }>(base, 'POST', '/customer/update', { user_id: 'updatable', budget_id: 'my-free-tier' });
    expect(tier.body.budget_id).toBe('my-free-tier');
    const both = await api<{ error: { param: string } }>(base, 'POST', '/customer/update', { user_id: 'updatable', budget_id: 'my-free-tier', max_budget: 1 });
    expect(both.status).toBe(400);
  });

  it('enforces model_max_budget per model', async () => {
    await api(base, 'POST', '/customer/new', { user_id: 'per-model', max_budget: 100, model_max_budget: { mistral: { max_budget: 0, budget_duration: '1d' } } });
    const refused = await chat(base, 'per-model', {}, 'mistral');
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('model=mistral');
    expect((await chat(base, 'per-model')).status).toBe(200);
  });

  it('limits parallel requests per customer', async () => {
    await api(base, 'POST', '/customer/new', { user_id: 'one-at-a-time', max_parallel_requests: 1 });
    const statuses = await Promise.all([chat(base, 'one-at-a-time', {}, 'slow-mock'), chat(base, 'one-at-a-time', {}, 'slow-mock')].map((p) => p.then(async (r) => (await r.arrayBuffer(), r.status))));
    expect(statuses.sort()).toEqual([200, 429]);
    expect((await chat(base, 'one-at-a-time', {}, 'slow-mock')).status).toBe(200);
  });

  it('rejects bad input with a 4xx that names the field, in the route\'s envelope', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/budget/new', { max_budget: -1 }, 'max_budget'],
      ['/budget/new', { max_budget: 'NaN' }, 'max_budget'],
      ['/budget/new', { max_budget: 'abc' }, 'max_budget'],
      ['/budget/new', { soft_budget: 'Infinity' }, 'soft_budget'],
      ['/budget/new', { rpm_limit: 1.5 }, 'rpm_limit'],
      ['/budget/new', { budget_duration: '1y' }, 'budget_duration'],
      ['/budget/new', { budget_duration: '0s' }, 'budget_duration'],
      ['/budget/new', { budget_duration: '99999999mo' }, 'longer than 100 years'],
      ['/budget/new', { max_budget: 99_999_999_999 }, 'must be at most 9223372.036854775807 USD'],
      ['/budget/new', { model_max_budget: { 'gpt\u0000': { max_budget: 1 } } }, 'model_max_budget.gpt'],
      ['/budget/new', { budget_id: 'my-free-tier' }, 'my-free-tier'],
      ['/budget/update', { max_budget: 1 }, 'budget_id'],
      ['/customer/new', { user_id: 'v1', budget_id: 'no-such-budget' }, 'no-such-budget'],
      ['/customer/new', { user_id: 'v2', budget_id: 'my-free-tier', max_budget: 1 }, 'max_budget'],
      ['/customer/new', { user_id: 'tier-customer' }, 'already exists'],
      ['/customer/new', { max_budget: 1 }, 'user_id'],
      ['/customer/new', { user_id: 'nul\u0000byte' }, 'must not contain a NUL character'],
      ['/customer/new', { user_id: 'v0', alias: 'a\u0000' }, 'alias'],
      ['/customer/new', { user_id: 'v3', tpm_limit: -5 }, 'tpm_limit'],
      ['/customer/new', { user_id: 'v4', allowed_model_region: 'mars' }, 'allowed_model_region'],
      ['/customer/new', { user_id: 'v5', default_model: 'nope' }, 'default_model'],
      ['/customer/update', { user_id: 'ghost', alias: 'x' }, 'ghost'],
      ['/customer/delete', { user_ids: ['ghost-1', 'ghost-2'] }, 'ghost-1, ghost-2'],
      ['/customer/block', { user_ids: 'not-a-list' }, 'user_ids'],
    ];
    for (const [path, body, mention] of cases) {
      const response = await api<unknown>(base, 'POST', path, body);
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBeLessThan(500);
      expect(JSON.stringify(response.body), path).toContain(mention);
    }
    // Infinity cannot be written in JSON, but 1e999 parses to it.
    const infinite = await fetch(`${base}/budget/new`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` }, body: '{"max_budget": 1e999}' });
    expect(infinite.status).toBe(400);
    // PostgreSQL cannot store U+0000: refused up front, in query strings and GraphQL too.
    const nulQuery = await api<unknown>(base, 'GET', '/spend/logs?end_user=%00');
    expect(nulQuery.status).toBe(400);
    expect(JSON.stringify(nulQuery.body)).toContain('end_user');
    const nulLiteral = await graphql(base, 'mutation { createBudget(input: { id: "a\\u0000b" }) { id } }');
    expect(nulLiteral.errors?.[0]).toMatchObject({ message: expect.stringContaining('NUL character'), extensions: { code: 'BAD_USER_INPUT' } });
    const nulVariable = await graphql(base, 'query ($search: String) { customers(search: $search) { totalCount } }', { search: '\u0000' });
    expect(nulVariable.errors?.[0]?.message).toContain('$.search');
    // Out-of-range dates and over-long strings get the same treatment through GraphQL.
    for (const [query, mention] of [
      ['{ spendReport(from: "0000-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z", groupBy: day) { spend } }', 'from'],
      ['mutation { createBudget(input: { resetAt: "0000-01-01T00:00:00Z", budgetDuration: "1d" }) { id } }', 'between 1970 and 9999'],
      [`mutation { createApiKey(alias: "${'a'.repeat(300)}") { key } }`, 'key_alias'],
    ]) {
      const result = await graphql(base, query!);
      expect(result.errors?.[0]?.extensions?.code, query).toBe('bad_request');
      expect(result.errors?.[0]?.message, query).toContain(mention);
    }
    const broken = await fetch(`${base}/budget/new`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` }, body: '{"max_budget": ' });
    expect(broken.status).toBe(400);
    // Envelopes: customer routes use ProxyException, budget routes FastAPI's detail.
    expect((await api(base, 'POST', '/customer/new', { user_id: 'tier-customer' })).body).toMatchObject({ error: { type: 'bad_request', param: 'user_id', code: '400' } });
    expect((await api(base, 'POST', '/budget/new', { max_budget: -1 })).body).toMatchObject({ detail: { error: expect.stringContaining('max_budget') } });
  });

  it('refuses to delete a budget in use, naming its customers, unless asked to detach', async () => {
    await api(base, 'POST', '/budget/new', { budget_id: 'doomed', max_budget: 1 });
    await api(base, 'POST', '/customer/new', { user_id: 'doomed-1', budget_id: 'doomed' });
    const refused = await api<{ detail: { error: string } }>(base, 'POST', '/budget/delete', { id: 'doomed' });
    expect(refused.status).toBe(409);
    expect(refused.body.detail.error).toContain('doomed-1');
    const deleted = await api<{ budget_id: string }>(base, 'POST', '/budget/delete', { id: 'doomed', detach: true });
    expect(deleted.body.budget_id).toBe('doomed');
    const info = await api<{ budget_id: string | null; litellm_budget_table: { budget_id: string } }>(base, 'GET', '/customer/info?end_user_id=doomed-1');
    expect(info.body.budget_id).toBeNull();
    expect(info.body.litellm_budget_table.budget_id).toBe('default-tier');
  });

  it('shows one state through REST and GraphQL', async () => {
    const created = await graphql<{ createBudget: { id: string; maxBudget: number; budgetDuration: string; resetAt: string } }>(
      base,
      `mutation { createBudget(input: { id: "gql-tier", maxBudget: 2.5, rpmLimit: 60, budgetDuration: "30d" }) { id maxBudget budgetDuration resetAt } }`,
    );
    expect(created.data!.createBudget).toMatchObject({ id: 'gql-tier', maxBudget: 2.5, budgetDuration: '30d' });
    expect(new Date(created.data!.createBudget.resetAt).getUTCDate()).toBe(1); // 30d aligns to the 1st
    const rest = await api<{ budget_id: string; max_budget: number; rpm_limit: number }[]>(base, 'POST', '/budget/info', { budgets: ['gql-tier'] });
    expect(rest.body[0]).toMatchObject({ budget_id: 'gql-tier', max_budget: 2.5, rpm_limit: 60 });
    await graphql(base, `mutation { createCustomer(input: { id: "gql-customer", budgetId: "gql-tier" }) { id } }`);
    const info = await api<{ litellm_budget_table: { budget_id: string } }>(base, 'GET', '/customer/info?end_user_id=gql-customer');
    expect(info.body.litellm_budget_table.budget_id).toBe('gql-tier');
    await api(base, 'POST', '/customer/update', { user_id: 'gql-customer', alias: 'Set by REST' });
    const viaGraphql = await graphql<{ customer: { alias: string; budget: { id: string; customerCount: number } } }>(base, `{ customer(id: "gql-customer") { alias budget { id customerCount } } }`);
    expect(viaGraphql.data!.customer).toEqual({ alias: 'Set by REST', budget: { id: 'gql-tier', customerCount: 1 } });
    const blocked = await graphql<{ blockCustomers: { id: string; blocked: boolean }[] }>(base, `mutation { blockCustomers(ids: ["gql-customer"]) { id blocked } }`);
    expect(blocked.data!.blockCustomers).toEqual([{ id: 'gql-customer', blocked: true }]);
    expect((await api<{ blocked: boolean }>(base, 'GET', '/customer/info?end_user_id=gql-customer')).body.blocked).toBe(true);
    const invalid = await graphql(base, `mutation { updateBudget(id: "gql-tier", input: { maxBudget: -3 }) { id } }`);
    expect(invalid.errors![0]!.message).toContain('maxBudget');
    expect(invalid.errors![0]!.extensions).toMatchObject({ code: 'bad_request' });
    const deleted = await graphql<{ deleteCustomers: number }>(base, `mutation { deleteCustomers(ids: ["gql-customer"]) }`);
    expect(deleted.data!.deleteCustomers).toBe(1);
    expect((await api(base, 'GET', '/customer/info?end_user_id=gql-customer')).status).toBe(404);
  });

  it('paginates /customer/list', async () => {
    const page1 = await api<{ user_id: string }[]>(base, 'GET', '/customer/list?page=1&page_size=3');
    const page2 = await api<{ user_id: string }[]>(base, 'GET', '/customer/list?page=2&page_size=3');
    expect(page1.body).toHaveLength(3);
    expect(Number(page1.headers.get('x-total-count'))).toBeGreaterThan(6);
    expect(page2.body[0]!.user_id > page1.body[2]!.user_id).toBe(true);
    expect((await api(base, 'GET', '/customer/list?page=0')).status).toBe(400);
  });

  it('keeps budgets, links and period spend across a restart', async () => {
    const before = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=tier-customer');
    await gateway.stop();
    gateway = await startTestGateway({ yaml, databaseUrl: database?.url, dataDir: gateway.dataDir });
    base = gateway.url;
    const after = await api<{ spend: number; litellm_budget_table: { budget_id: string } }>(base, 'GET', '/customer/info?end_user_id=tier-customer');
    expect(after.body.spend).toBe(before.body.spend);
    expect(after.body.litellm_budget_table.budget_id).toBe('my-free-tier');
    expect((await chat(base, 'tier-customer')).status).toBe(402);
    expect((await chat(base, 'ishaan-jaff-48')).status).toBe(402);
  });
});
