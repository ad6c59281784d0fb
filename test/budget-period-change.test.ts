/**
 * A tier's period changed so that it starts earlier (daily to monthly: today's midnight to the
 * 1st): the customers' spend since the new start counts at once, new spend adds to it, and the
 * cap of the new period holds. The same for a per-model budget (`model_max_budget`), and for
 * one added to a tier mid-period. With in-process counters and with Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, MASTER_KEY, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

function chat(base: string, user: string, model = 'gpt-3.5-turbo') {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model, user, messages: [{ role: 'user', content: 'what time is it' }], max_tokens: 5 }),
    signal: AbortSignal.timeout(30_000),
  });
}

describe.each(['in-process', 'redis'] as const)('a tier whose period starts earlier, %s counters', (counters) => {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  const gatewayEnv = (): Record<string, string> => (counters === 'redis' ? { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } : {});

  beforeAll(async () => {
    database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: testConfigYaml(), databaseUrl: database.url, env: gatewayEnv() });
  });

  afterAll(async () => {
    await gateway?.stop();
    if (counters === 'redis') await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('counts the spend since the new start, adds new spend to it, and refuses at the cap', async () => {
    const probe = await chat(gateway.url, 'probe');
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    const spendOf = async () => dollarsToPico((await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=grower')).body.spend);
    expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: 'daily-then-monthly', max_budget: Number(picoToDollars(4n * cost)), budget_duration: '1d' })).status).toBe(200);
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'grower', budget_id: 'daily-then-monthly' })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await chat(gateway.url, 'grower')).status).toBe(200);
    expect(await spendOf()).toBe(2n * cost);

    expect((await api(gateway.url, 'POST', '/budget/update', { budget_id: 'daily-then-monthly', budget_duration: '1mo' })).status).toBe(200);
    // Today is inside this month: nothing of it is lost.
    expect(await spendOf()).toBe(2n * cost);
    expect((await chat(gateway.url, 'grower')).status).toBe(200);
    expect(await spendOf()).toBe(3n * cost);

    // Restarted (in-process counters start empty; Redis's lost), the customer's counter is read
    // back from the store: the month's row, not the later row of the retired day.
    await gateway.stop();
    if (counters === 'redis') await deleteRedisKeys(prefix);
    gateway = await startTestGateway({ yaml: testConfigYaml(), databaseUrl: database.url, dataDir: gateway.dataDir, env: gatewayEnv() });
    expect(await spendOf()).toBe(3n * cost);
    expect((await chat(gateway.url, 'grower')).status).toBe(200);
    expect(await spendOf()).toBe(4n * cost);
    expect((await chat(gateway.url, 'grower')).status).toBe(402);
  });

  it('does the same for a per-model budget whose period starts earlier, and for one added mid-period', async () => {
    const probe = await chat(gateway.url, 'probe', 'mistral');
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    const cap = Number(picoToDollars(4n * cost));
    const modelBudget = (duration: string) => ({ model_max_budget: { mistral: { max_budget: cap, budget_duration: duration } } });
    expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: 'model-capped', max_budget: 100, ...modelBudget('1d') })).status).toBe(200);
    expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: 'model-later', max_budget: 100 })).status).toBe(200);
    for (const [user, budget] of [['per-model', 'model-capped'], ['added-later', 'model-later']]) {
      expect((await api(gateway.url, 'POST', '/customer/new', { user_id: user, budget_id: budget })).status).toBe(200);
      for (let i = 0; i < 2; i++) expect((await chat(gateway.url, user, 'mistral')).status).toBe(200);
    }

    expect((await api(gateway.url, 'POST', '/budget/update', { budget_id: 'model-capped', ...modelBudget('1mo') })).status).toBe(200);
    // Added with spend already this month: that spend counts against it.
    expect((await api(gateway.url, 'POST', '/budget/update', { budget_id: 'model-later', ...modelBudget('1mo') })).status).toBe(200);
    for (const user of ['per-model', 'added-later']) {
      for (let i = 0; i < 2; i++) expect((await chat(gateway.url, user, 'mistral')).status, user).toBe(200);
      const refused = await chat(gateway.url, user, 'mistral');
      expect(refused.status, user).toBe(402);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('model=mistral');
      expect((await chat(gateway.url, user)).status).toBe(200); // other models are not capped
    }
  });
});
