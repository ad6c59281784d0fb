/**
 * A tier's period changed so that it starts earlier (daily to monthly: today's midnight to the
 * 1st): the customers' spend since the new start counts at once, new spend adds to it, and the
 * cap of the new period holds. With in-process counters and with Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, MASTER_KEY, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

function chat(base: string, user: string) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'what time is it' }], max_tokens: 5 }),
    signal: AbortSignal.timeout(30_000),
  });
}

describe.each(['in-process', 'redis'] as const)('a tier whose period starts earlier, %s counters', (counters) => {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    const env: Record<string, string> = counters === 'redis' ? { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } : {};
    gateway = await startTestGateway({ yaml: testConfigYaml(), databaseUrl: database.url, env });
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
    for (let i = 0; i < 2; i++) expect((await chat(gateway.url, 'grower')).status).toBe(200);
    expect(await spendOf()).toBe(4n * cost);
    expect((await chat(gateway.url, 'grower')).status).toBe(402);
  });
});
