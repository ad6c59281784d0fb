/**
 * Two proxies on one PostgreSQL whose REDIS_URL names a real 3-master Redis Cluster
 * (`redis+cluster://…`, started by the test): a budget is exact across them, a customer's
 * spend is the same seen from either, and a change made through one applies on the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, MASTER_KEY, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { startRedisCluster, type PrivateCluster } from './support/redis-cluster';
import { dollarsToPico } from '../src/shared/money';
import { Cluster, Redis } from 'ioredis';
import { publishCounted } from '../src/shared-state/redis';

function chat(base: string, user: string) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
  });
}

describe('proxies sharing a Redis Cluster', () => {
  let cluster: PrivateCluster;
  let database: TestDatabase;
  const gateways: Awaited<ReturnType<typeof startTestGateway>>[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
    database = await createTestDatabase();
    for (let i = 0; i < 2; i++) gateways.push(await startTestGateway({ yaml: testConfigYaml(), databaseUrl: database.url, env: { REDIS_URL: cluster.url } }));
  });
  afterAll(async () => {
    for (const gateway of gateways) await gateway.stop();
    await cluster?.stop();
    await database?.drop();
  });

  it('keeps budgets exact and changes in step across the proxies', async () => {
    const [a, b] = gateways as [(typeof gateways)[0], (typeof gateways)[0]];
    expect((await api(a.url, 'POST', '/customer/new', { user_id: 'clustered' })).status).toBe(200);
    const first = await chat(a.url, 'clustered');
    expect(first.status).toBe(200);
    const unit = dollarsToPico(first.headers.get('x-litellm-response-cost')!);
    await first.arrayBuffer();
    // A budget of about two requests' cost, set through one proxy, applies on the other at once.
    const budget = (5n * unit) / 2n; // not a multiple of a request, so no tie at the limit
    expect((await api(b.url, 'POST', '/customer/update', { user_id: 'clustered', max_budget: Number(budget) / 1e12 })).status).toBe(200);
    let spent = unit;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = spent;
      const response = await chat((i % 2 ? b : a).url, 'clustered');
      statuses.push(response.status);
      if (response.status === 200) {
        expect(before).toBeLessThan(budget); // admitted only while under the budget
        spent += dollarsToPico(response.headers.get('x-litellm-response-cost')!);
      } else expect(before).toBeGreaterThanOrEqual(budget);
      await response.arrayBuffer();
    }
    expect(statuses).toContain(402);
    for (const gateway of gateways) {
      const info = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=clustered');
      expect(dollarsToPico(String(info.body.spend))).toBe(spent);
    }
  });

  it('counts the subscribers of every node when publishing a change notice, so it waits for all their acks', async () => {
    // One subscriber on each master: the processes of a deployment land on whichever node.
    const subscribers = cluster.nodes.map((node) => new Redis(node.port, node.host));
    const client = new Cluster(cluster.nodes);
    try {
      for (const subscriber of subscribers) await subscriber.subscribe('count-me');
      // PUBLISH's own reply counts only the node it went to: 1 of the 3.
      expect(await client.publish('count-me', 'plain')).toBe(1);
      expect(await publishCounted(client, 'count-me', 'counted')).toBe(3);
    } finally {
      for (const subscriber of subscribers) subscriber.disconnect();
      client.disconnect();
    }
  });
});
