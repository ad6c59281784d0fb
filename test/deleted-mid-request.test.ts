/**
 * A customer deleted while one of its streams runs, then created again under the same id
 * (LiteLLM's users reset a customer's spend that way): the stream is billed, and the customer
 * created again starts from zero, in the live counter and in the store alike (read back after
 * a restart). The stream's late settlement does not bring the old counter back. With
 * in-process counters and with Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, openaiClient, startTestGateway, testConfigYaml } from './support/gateway';
import { ledgerRows } from './support/ledger';
import { MockUpstream } from './support/mock-upstream';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico } from '../src/shared/money';

describe.each(['in-process', 'redis'] as const)('a customer deleted while its stream runs, %s counters', (counters) => {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let upstream: MockUpstream;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  const gatewayEnv = (): Record<string, string> => (counters === 'redis' ? { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } : {});
  const yaml = () => testConfigYaml({ upstreamBase: upstream.baseUrl });
  const spendOf = async (user: string) => dollarsToPico((await api<{ spend: number }>(gateway.url, 'GET', `/customer/info?end_user_id=${user}`)).body.spend);

  beforeAll(async () => {
    database = await createTestDatabase();
    upstream = await new MockUpstream().start();
    gateway = await startTestGateway({ yaml: yaml(), databaseUrl: database.url, env: gatewayEnv() });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
    if (counters === 'redis') await deleteRedisKeys(prefix);
    await database?.drop();
  });

  it('bills the stream, and starts the customer created again from zero, live and after a restart', async () => {
    const client = openaiClient(`${gateway.url}/v1`);
    const messages = [{ role: 'user' as const, content: 'tell me a story' }];
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'phoenix', max_budget: 100 })).status).toBe(200);
    await client.chat.completions.create({ model: 'upstream-gpt', user: 'phoenix', messages });

    upstream.behavior.pauseAfterChunks = 2;
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'phoenix', stream: true, messages });
    let chunks = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content && ++chunks === 2) {
        expect((await api(gateway.url, 'POST', '/customer/delete', { user_ids: ['phoenix'] })).status).toBe(200);
        upstream.resume();
      }
    }
    const rows = await ledgerRows(gateway, 'phoenix');
    expect(rows).toHaveLength(2); // the stream is charged all the same

    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'phoenix', max_budget: 100 })).status).toBe(200);
    expect(await spendOf('phoenix')).toBe(0n);
    await client.chat.completions.create({ model: 'upstream-gpt', user: 'phoenix', messages });
    const after = (await ledgerRows(gateway, 'phoenix'))[2]!.cost;
    expect(await spendOf('phoenix')).toBe(after);
    // Restarted, the counter is read from the store (Redis's lost too).
    await gateway.stop();
    if (counters === 'redis') await deleteRedisKeys(prefix);
    gateway = await startTestGateway({ yaml: yaml(), databaseUrl: database.url, dataDir: gateway.dataDir, env: gatewayEnv() });
    expect(await spendOf('phoenix')).toBe(after);
  });
});
