/**
 * Virtual keys: stored hashed, scoped. An inference key may call the data plane only; an
 * admin key may also administer; a revoked key is refused everywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, graphql, openaiClient, startTestGateway } from './support/gateway';

describe('virtual keys', () => {
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('scopes inference keys to the data plane and records their alias on the ledger', async () => {
    const generated = await api<{ key: string; key_alias: string; token: string; scope: string }>(gateway.url, 'POST', '/key/generate', { key_alias: 'mobile-app' });
    expect(generated.status).toBe(200);
    expect(generated.body).toMatchObject({ key_alias: 'mobile-app', scope: 'inference' });
    const key = generated.body.key;
    expect(key).toMatch(/^sk-tg-/);

    const completion = await openaiClient(`${gateway.url}/v1`, key).chat.completions.create({ model: 'gpt-3.5-turbo', user: 'keyed', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices).toHaveLength(1);
    for (const path of ['/customer/info?end_user_id=keyed', '/budget/list', '/customer/list']) {
      expect((await api(gateway.url, 'GET', path, undefined, key)).status).toBe(401);
    }
    expect((await api(gateway.url, 'POST', '/graphql', { query: '{ budgets { id } }' }, key)).status).toBe(401);

    const logs = await api<{ key_alias: string; api_key: string }[]>(gateway.url, 'GET', '/spend/logs?end_user=keyed');
    expect(logs.body[0]!.key_alias).toBe('mobile-app');
    expect(logs.body[0]!.api_key).not.toContain(key); // only the hash is stored

    const revoked = await graphql<{ revokeApiKey: { revoked: boolean } }>(gateway.url, `mutation($id: ID!) { revokeApiKey(id: $id) { revoked } }`, { id: generated.body.token });
    expect(revoked.data!.revokeApiKey.revoked).toBe(true);
    await expect(openaiClient(`${gateway.url}/v1`, key).chat.completions.create({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 401 });
  });

  it('lets admin keys administer, through REST and GraphQL', async () => {
    const created = await graphql<{ createApiKey: { key: string; apiKey: { scope: string } } }>(gateway.url, `mutation { createApiKey(alias: "ops", scope: admin) { key apiKey { scope } } }`);
    const key = created.data!.createApiKey.key;
    expect(created.data!.createApiKey.apiKey.scope).toBe('admin');
    expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: 'ops-tier', max_budget: 1 }, key)).status).toBe(200);
    const budgets = await graphql<{ budgets: { id: string }[] }>(gateway.url, '{ budgets { id } }', {}, key);
    expect(budgets.data!.budgets.map((b) => b.id)).toContain('ops-tier');
    expect((await api(gateway.url, 'POST', '/key/generate', { scope: 'root' })).status).toBe(400);
  });

  it('keeps keys across a restart', async () => {
    const generated = await api<{ key: string }>(gateway.url, 'POST', '/key/generate', { key_alias: 'durable' });
    await gateway.stop();
    gateway = await startTestGateway({ dataDir: gateway.dataDir });
    const completion = await openaiClient(`${gateway.url}/v1`, generated.body.key).chat.completions.create({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'still here?' }] });
    expect(completion.choices[0]!.message.content).toContain('still here?');
  });

  it('refuses deep GraphQL queries with a 400 before running them', async () => {
    const deep = `{ customers { nodes { budget { id } } pageInfo { endCursor } } }`;
    expect((await api(gateway.url, 'POST', '/graphql', { query: deep })).status).toBe(200);
    let nested = 'id';
    for (let i = 0; i < 12; i++) nested = `... on Query { __typename customers { nodes { id budget { ${nested} } } } }`;
    const response = await api<{ errors: { message: string }[] }>(gateway.url, 'POST', '/graphql', { query: `{ ${nested} }` });
    expect(response.status).toBe(400);
    expect(response.body.errors[0]!.message).toMatch(/depth limit of 8 exceeded, found \d+/);
  });
});
