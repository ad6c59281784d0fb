/**
 * The planes apart, as SPEC §1 draws them: one `tollgate control` and two `tollgate proxy`
 * processes sharing PostgreSQL and Redis. Every route works through either proxy (admin
 * routes and the GraphQL WebSocket are forwarded to the control plane with http-proxy), a
 * subscriber sees spend metered by every proxy, and inference keeps flowing while the
 * control plane is down.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, MASTER_KEY, ROOT, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { collect, liveClient } from './support/live';
import { subscriptionsOpen } from './support/metrics';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico } from '../src/shared/money';


function chat(base: string, user: string) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hello from a proxy' }] }),
  });
}

describe('control plane and proxies in separate processes', () => {
  const prefix = freshRedisPrefix();
  const yaml = testConfigYaml();
  let database: TestDatabase;
  let control: SpawnedGateway;
  let proxies: SpawnedGateway[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix };
    control = await spawnGateway({ yaml, dataDir: freshDataDir(), env, command: 'control' });
    proxies = await Promise.all(
      [0, 1].map(() => spawnGateway({ yaml, dataDir: freshDataDir(), env, command: 'proxy', args: ['--control-plane-url', control.url] })),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...proxies, control].map((gateway) => gateway?.stop()));
    await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('serves admin routes through any proxy and meters inference on all of them, visible at once', async () => {
    const [a, b] = proxies as [SpawnedGateway, SpawnedGateway];
    expect(control.output()).toContain('"role":"control"');
    expect((await api(a.url, 'POST', '/budget/new', { budget_id: 'split-tier', max_budget: 5 })).status).toBe(200);
    expect((await api(b.url, 'POST', '/customer/new', { user_id: 'split-customer', budget_id: 'split-tier' })).status).toBe(200);

    const live = liveClient(b.url); // WebSocket upgraded through proxy b to the control plane
    const updates = collect<{ customerId: string; cost: number; spend: number }>(live, `subscription { spendUpdated(customerId: "split-customer") { customerId cost spend } }`);
    await subscriptionsOpen(control.url, 1); // listening on the control plane before the first request

    let total = 0n;
    for (const proxy of [a, b, a]) {
      const response = await chat(proxy.url, 'split-customer');
      expect(response.status).toBe(200);
      total += dollarsToPico(response.headers.get('x-litellm-response-cost')!);
    }
    // Read-your-writes through the other proxy, answered by the control plane from Redis.
    const info = await api<{ spend: number; litellm_budget_table: { budget_id: string } }>(b.url, 'GET', '/customer/info?end_user_id=split-customer');
    expect(dollarsToPico(info.body.spend)).toBe(total);
    expect(info.body.litellm_budget_table.budget_id).toBe('split-tier');

    // The subscriber on the control plane sees the requests of both proxies.
    await updates.until((delivered) => delivered.data.length >= 3);
    expect(updates.delivery.data.map((update) => update.customerId)).toEqual(['split-customer', 'split-customer', 'split-customer']);
    expect(dollarsToPico(updates.delivery.data[2]!.spend)).toBe(total);
    updates.dispose();
    await live.dispose();

    // The UI is served through a proxy too.
    const ui = await fetch(`${a.url}/ui/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('<div id="root">');
  });

  it('keeps inference off the control plane', async () => {
    const response = await chat(control.url, 'split-customer');
    expect(response.status).toBe(421);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain('control plane');
  });

  it('refuses to run the planes apart without what they share', () => {
    const dir = freshDataDir();
    const path = join(dir, 'config.yaml');
    writeFileSync(path, yaml);
    const run = (args: string[], extraEnv: Record<string, string>) =>
      spawnSync(process.execPath, [join(ROOT, 'bin/tollgate.js'), ...args, '--config', path, '--port', '0'], { env: { ...process.env, VITEST: '', TOLLGATE_DATA_DIR: dir, ...extraEnv }, encoding: 'utf8', timeout: 60_000 });
    const withoutRedis = run(['control'], { DATABASE_URL: database.url, REDIS_URL: '' });
    expect(withoutRedis.status).toBe(2);
    expect(withoutRedis.stderr).toContain('REDIS_URL');
    const withoutTarget = run(['proxy'], env);
    expect(withoutTarget.status).toBe(2);
    expect(withoutTarget.stderr).toContain('--control-plane-url');
  });

  it('keeps serving inference while the control plane is down', async () => {
    await control.stop();
    const [a] = proxies as [SpawnedGateway];
    expect((await chat(a.url, 'split-customer')).status).toBe(200);
    const admin = await api<{ error: { message: string } }>(a.url, 'GET', '/customer/info?end_user_id=split-customer');
    expect(admin.status).toBe(502);
    expect(admin.body.error.message).toContain('control plane');
  });
});
