/**
 * A key bound to a customer over the customer's life, across planes (`tollgate control` + a
 * `tollgate proxy`, PostgreSQL and Redis), with caches of two customers so the customer a key
 * is bound to is usually not cached: binding reads the store, and deleting the customer revokes
 * its keys on every process (otherwise the key would bring the customer back as a new one on
 * the default budget, its history gone). A request still in flight when its customer is deleted
 * is charged all the same, and its charge does not bring the customer back either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, MASTER_KEY, openaiClient, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { MockUpstream } from './support/mock-upstream';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { until } from './support/poll';

function chat(base: string, key: string) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 }),
    signal: AbortSignal.timeout(30_000),
  });
}

describe('a key bound to a customer, over the customer’s life', () => {
  const prefix = freshRedisPrefix();
  let upstream: MockUpstream;
  let database: TestDatabase;
  let control: SpawnedGateway;
  let proxy: SpawnedGateway;

  beforeAll(async () => {
    upstream = await new MockUpstream().start();
    const yaml = testConfigYaml({ upstreamBase: upstream.baseUrl, extra: 'tollgate:\n  customer_cache_size: 2\n' });
    database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix };
    control = await spawnGateway({ yaml, dataDir: freshDataDir(), env, command: 'control' });
    proxy = await spawnGateway({ yaml, dataDir: freshDataDir(), env, command: 'proxy', args: ['--control-plane-url', control.url] });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([proxy, control].map((gateway) => gateway?.stop()));
    await upstream?.stop();
    await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('binds a key to a customer the control plane no longer caches', async () => {
    for (const id of ['bound-a', 'filler-1', 'filler-2', 'filler-3']) {
      expect((await api(control.url, 'POST', '/customer/new', { user_id: id })).status).toBe(200);
    }
    // bound-a was evicted from the control plane's cache of two by the fillers.
    const generated = await api<{ key: string; customer_id: string }>(control.url, 'POST', '/key/generate', { customer_id: 'bound-a' });
    expect(generated.status, JSON.stringify(generated.body)).toBe(200);
    expect(generated.body.customer_id).toBe('bound-a');
    const response = await chat(proxy.url, generated.body.key);
    expect(response.status).toBe(200);
    const ledger = await api<{ spend: number }>(control.url, 'GET', '/customer/info?end_user_id=bound-a');
    expect(ledger.status).toBe(200);
  });

  it('still refuses to bind a key to a customer that does not exist, naming it', async () => {
    const response = await api<{ detail: { error: string } }>(control.url, 'POST', '/key/generate', { customer_id: 'nobody-here' });
    expect(response.status).toBe(404);
    expect(response.body.detail.error).toContain("'nobody-here' does not exist");
  });

  it('revokes a customer’s keys when the customer is deleted, on the proxy too, and does not bring it back', async () => {
    expect((await api(control.url, 'POST', '/customer/new', { user_id: 'bound-b', max_budget: 5 })).status).toBe(200);
    const generated = await api<{ key: string; token: string }>(control.url, 'POST', '/key/generate', { customer_id: 'bound-b' });
    const other = await api<{ key: string }>(control.url, 'POST', '/key/generate', { key_alias: 'unbound' });
    expect((await chat(proxy.url, generated.body.key)).status).toBe(200);

    const deleted = await api(control.url, 'POST', '/customer/delete', { user_ids: ['bound-b'] });
    expect(deleted.status).toBe(200);

    // The proxy hears of it through the change notice.
    await until('the proxy to refuse the deleted customer’s key', async () => (await chat(proxy.url, generated.body.key)).status === 401, { timeoutMs: 10_000 });
    // Not recreated by the refused requests, and the key is recorded as revoked.
    expect((await api(control.url, 'GET', '/customer/info?end_user_id=bound-b')).status).toBe(404);
    const keys = await queryDatabase<{ revoked_at: Date | null }>(database.url, `select revoked_at from api_keys where id = $1`, [generated.body.token]);
    expect(keys[0]?.revoked_at).not.toBeNull();
    // Keys not bound to it are untouched.
    expect((await chat(proxy.url, other.body.key)).status).toBe(200);
    // The audit trail of the deleted customer says which keys went with it.
    const audit = await queryDatabase<{ changes: Record<string, unknown> }>(database.url, `select changes from customer_audit where customer_id = 'bound-b' and action = 'deleted'`);
    expect(JSON.stringify(audit[0]?.changes)).toContain(generated.body.token);
  });

  it('charges a stream that was in flight when its customer was deleted, without bringing the customer back', async () => {
    expect((await api(control.url, 'POST', '/customer/new', { user_id: 'bound-c', max_budget: 5 })).status).toBe(200);
    const generated = await api<{ key: string; token: string }>(control.url, 'POST', '/key/generate', { customer_id: 'bound-c' });
    upstream.reset();
    upstream.behavior.pauseAfterChunks = 2;
    const stream = await openaiClient(`${proxy.url}/v1`, generated.body.key).chat.completions.create({
      model: 'upstream-gpt',
      stream: true,
      messages: [{ role: 'user', content: 'a long answer, please' }],
    });
    let delivered = '';
    let contentChunks = 0;
    let deleted = false;
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content;
      delivered += content ?? '';
      if (content && ++contentChunks === 2) {
        // The upstream holds the stream open: the customer goes while its request runs.
        deleted = true;
        expect((await api(control.url, 'POST', '/customer/delete', { user_ids: ['bound-c'] })).status).toBe(200);
        upstream.resume();
      }
    }
    expect(deleted).toBe(true);
    expect(delivered).toBe(upstream.behavior.reply);
    // The request was served, so it is charged: the ledger keeps its row.
    const rows = await until('the in-flight stream’s ledger row', async () => {
      const found = await queryDatabase<{ cost_pico: string }>(database.url, `select cost_pico::text from spend_ledger where customer_id = 'bound-c'`);
      return found.length ? found : null;
    });
    expect(rows).toHaveLength(1);
    expect(BigInt(rows[0]!.cost_pico)).toBeGreaterThan(0n);
    // Writing that row did not create the customer again.
    expect(await queryDatabase(database.url, `select user_id from customers where user_id = 'bound-c'`)).toHaveLength(0);
    expect((await api(control.url, 'GET', '/customer/info?end_user_id=bound-c')).status).toBe(404);
    expect((await chat(proxy.url, generated.body.key)).status).toBe(401);
  });

  it('refuses a bound key whose customer is gone from the store before this process heard of it, and does not create it', async () => {
    expect((await api(control.url, 'POST', '/customer/new', { user_id: 'bound-d' })).status).toBe(200);
    const generated = await api<{ key: string }>(control.url, 'POST', '/key/generate', { customer_id: 'bound-d' });
    expect((await chat(proxy.url, generated.body.key)).status).toBe(200);
    // Two other customers push bound-d out of the proxy's cache of two.
    for (const id of ['filler-1', 'filler-2']) {
      const response = await fetch(`${proxy.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
        body: JSON.stringify({ model: 'gpt-3.5-turbo', user: id, messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 }),
      });
      expect(response.status).toBe(200);
    }
    // Gone from the store with no change notice: how a deletion looks to a process that has
    // not heard of it yet, its key still live there.
    await queryDatabase(database.url, `delete from customers where user_id = 'bound-d'`);
    const refused = await chat(proxy.url, generated.body.key);
    expect(refused.status).toBe(401);
    expect(JSON.stringify(await refused.json())).toContain('bound to customer \\"bound-d\\", which has been deleted');
    expect(await queryDatabase(database.url, `select user_id from customers where user_id = 'bound-d'`)).toHaveLength(0);
  });
});
