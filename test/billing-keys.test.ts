/**
 * Keys bound to a customer: the key is its customer, always (a spoofed customer is a 403
 * naming both), may carry its own rpm and lifetime budget, and reads only its customer's usage
 * through GET /customer/me and GraphQL viewer. PostgreSQL and Redis counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, graphql, openaiClient, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico } from '../src/shared/money';

function chat(base: string, key: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify({ model: 'mistral', messages: [{ role: 'user', content: 'what time is it' }], max_tokens: 20, ...extra }),
  });
}

describe('keys bound to a customer', () => {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let base: string;

  async function ledgerCustomers(keyId?: string): Promise<string[]> {
    await gateway.ledger.flush();
    const knex = gateway.database.orm.em.getConnection().getKnex();
    const result = await knex.raw(`select customer_id from spend_ledger ${keyId ? 'where api_key_id = ?' : ''} order by created_at`, keyId ? [keyId] : []);
    return (result.rows as { customer_id: string }[]).map((row) => row.customer_id);
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: testConfigYaml(), databaseUrl: database.url, env: { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } });
    base = gateway.url;
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'resale', price_multiplier: 1.3, max_budget: 10 })).status).toBe(200);
    for (const id of ['acme', 'globex']) expect((await api(base, 'POST', '/customer/new', { user_id: id, budget_id: 'resale' })).status).toBe(200);
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    await deleteRedisKeys(prefix);
  });

  it('charges every request of a bound key to its customer and refuses a spoofed one with a 403 naming both', async () => {
    const generated = await api<{ key: string; token: string; customer_id: string; scope: string }>(base, 'POST', '/key/generate', { key_alias: 'acme-app', customer_id: 'acme' });
    expect(generated.status).toBe(200);
    expect(generated.body).toMatchObject({ customer_id: 'acme', scope: 'inference' });
    const key = generated.body.key;

    const client = openaiClient(`${base}/v1`, key);
    await client.chat.completions.create({ model: 'mistral', messages: [{ role: 'user', content: 'hi' }] });
    await client.chat.completions.create({ model: 'mistral', user: 'acme', messages: [{ role: 'user', content: 'hi' }] });
    // The ledger names the key by its id (never a hash of it).
    expect(await ledgerCustomers(generated.body.token)).toEqual(['acme', 'acme']);

    const spoofs: [Record<string, unknown>, Record<string, string>, string][] = [
      [{ user: 'globex' }, {}, 'user'],
      [{}, { 'x-litellm-customer-id': 'globex' }, 'header x-litellm-customer-id'],
      [{ metadata: { user_id: 'globex' } }, {}, 'metadata.user_id'],
    ];
    for (const [body, headers, source] of spoofs) {
      const response = await chat(base, key, body, headers);
      expect(response.status).toBe(403);
      const error = ((await response.json()) as { error: { message: string; param: string } }).error;
      expect(error.message).toContain('"acme"');
      expect(error.message).toContain('"globex"');
      expect(error.param).toBe(source);
    }
    // The SDK surfaces it as a permission error, not retried.
    await expect(client.chat.completions.create({ model: 'mistral', user: 'globex', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 403 });
    expect(await ledgerCustomers(generated.body.token)).toHaveLength(2);
    const globex = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=globex');
    expect(globex.body.spend).toBe(0);
  });

  it('holds a bound key to its own rpm and lifetime budget, on top of the customer’s', async () => {
    const limited = await graphql<{ createApiKey: { key: string; apiKey: { customerId: string; rpmLimit: number; maxBudget: number | null } } }>(
      base,
      'mutation { createApiKey(alias: "globex-rpm", customerId: "globex", rpmLimit: 2) { key apiKey { customerId rpmLimit maxBudget } } }',
    );
    expect(limited.errors).toBeUndefined();
    expect(limited.data!.createApiKey.apiKey).toEqual({ customerId: 'globex', rpmLimit: 2, maxBudget: null });
    const rpmKey = limited.data!.createApiKey.key;
    expect((await chat(base, rpmKey)).status).toBe(200);
    expect((await chat(base, rpmKey)).status).toBe(200);
    const third = await chat(base, rpmKey);
    expect(third.status).toBe(429);
    const rateError = ((await third.json()) as { error: { type: string; message: string } }).error;
    expect(rateError.type).toBe('rate_limit_exceeded');
    expect(rateError.message).toContain('globex-rpm');
    // The customer itself is not limited: another of its keys still gets through.
    const other = await api<{ key: string }>(base, 'POST', '/key/generate', { customer_id: 'globex', max_budget: 0.00002 });
    expect(other.status).toBe(200);
    let refused: Response | null = null;
    let charged = 0n;
    for (let i = 0; i < 40 && !refused; i++) {
      const response = await chat(base, other.body.key);
      if (response.status === 200) charged += dollarsToPico(response.headers.get('x-litellm-response-cost')!);
      else refused = response;
      await response.arrayBuffer().catch(() => undefined);
    }
    expect(refused?.status).toBe(402);
    expect(refused?.headers.get('x-should-retry')).toBe('false');
    expect(charged).toBeGreaterThanOrEqual(dollarsToPico(0.00002));
    const me = await api<{ key: { spend: number; max_budget: number } }>(base, 'GET', '/customer/me', undefined, other.body.key);
    expect(dollarsToPico(me.body.key.spend)).toBe(charged);
    expect(me.body.key.max_budget).toBe(0.00002);
  });

  it('lets a bound key read its own customer through GET /customer/me and GraphQL viewer, and nothing else', async () => {
    const { body } = await api<{ key: string }>(base, 'POST', '/key/generate', { customer_id: 'acme' });
    const key = body.key;
    expect((await chat(base, key)).status).toBe(200);
    const info = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=acme');
    const me = await api<{ user_id: string; spend: number; max_budget: number; budget_remaining: number; usage: { spend: number; requests: number }[]; cost?: unknown }>(base, 'GET', '/customer/me', undefined, key);
    expect(me.status).toBe(200);
    expect(me.body.user_id).toBe('acme');
    expect(me.body.spend).toBe(info.body.spend);
    expect(me.body.max_budget).toBe(10);
    expect(dollarsToPico(me.body.budget_remaining)).toBe(dollarsToPico(10) - dollarsToPico(me.body.spend));
    expect(me.body.usage.reduce((sum, day) => sum + dollarsToPico(day.spend), 0n)).toBe(dollarsToPico(me.body.spend));
    expect(me.body.usage.reduce((sum, day) => sum + day.requests, 0)).toBe(3);
    expect(JSON.stringify(me.body)).not.toContain('cost');
    expect((await api(base, 'GET', '/end_user/me', undefined, key)).body).toEqual(me.body);

    const viewer = await graphql<{ viewer: { customerId: string; spend: number; usage: { spend: number }[] } }>(base, '{ viewer { customerId spend usage { spend } } }', {}, key);
    expect(viewer.errors).toBeUndefined();
    expect(viewer.data!.viewer.customerId).toBe('acme');
    expect(viewer.data!.viewer.spend).toBe(me.body.spend);

    for (const [method, path, payload] of [['GET', '/customer/info?end_user_id=globex'], ['GET', '/customer/list'], ['POST', '/budget/new', { budget_id: 'x' }], ['POST', '/key/generate', {}], ['GET', '/spend/logs']] as const) {
      const response = await api<{ error: { message: string } }>(base, method, path, payload, key);
      expect(response.status, path).toBe(403);
      expect(response.body.error.message).toContain('/customer/me');
    }
    const admin = await graphql(base, '{ customers { totalCount } }', {}, key);
    expect(admin.errors?.[0]?.message).toContain('customers');
    expect(admin.data).toBeUndefined();
    const mutation = await graphql(base, 'mutation { deleteCustomers(ids: ["globex"]) }', {}, key);
    expect(mutation.errors).toHaveLength(1);
    expect((await api(base, 'GET', '/customer/info?end_user_id=globex')).status).toBe(200);
    // An admin key has no viewer.
    expect((await graphql<{ viewer: null }>(base, '{ viewer { customerId } }')).data).toEqual({ viewer: null });
  });

  it('refuses bad bindings with a 4xx naming the field', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ customer_id: 'nobody' }, 404, 'nobody'],
      [{ rpm_limit: 5 }, 400, 'rpm_limit'],
      [{ customer_id: 'acme', scope: 'admin' }, 400, 'scope'],
      [{ customer_id: 'acme', rpm_limit: -1 }, 400, 'rpm_limit'],
      [{ customer_id: 'acme', max_budget: 'lots' }, 400, 'max_budget'],
      [{ customer_id: 42 }, 400, 'customer_id'],
    ];
    for (const [payload, status, text] of cases) {
      const response = await api(base, 'POST', '/key/generate', payload);
      expect(response.status, JSON.stringify(payload)).toBe(status);
      expect(JSON.stringify(response.body)).toContain(text);
    }
  });
});
