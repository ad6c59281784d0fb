/**
 * The gateway collects its garbage once it falls quiet (server/idle-collection.ts): once after
 * start-up, once after requests came and went, and not while nothing happens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDataDir, MASTER_KEY, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { until } from './support/poll';

const LINE = 'quiet: full garbage collection';
const collections = (gateway: SpawnedGateway) => gateway.output().split(LINE).length - 1;

describe('a gateway that falls quiet', () => {
  let gateway: SpawnedGateway;

  beforeAll(async () => {
    gateway = await spawnGateway({
      yaml: testConfigYaml({ extra: 'tollgate:\n  idle_collection_seconds: 1\n' }),
      dataDir: freshDataDir(),
      env: { LOG_LEVEL: 'debug' },
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.stop();
  });

  it('collects once after start-up, once after requests, and not in between', async () => {
    await until('the collection after start-up', () => collections(gateway) >= 1, { timeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // three more quiet intervals
    expect(collections(gateway)).toBe(1);

    for (let n = 0; n < 5; n++) {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
        body: JSON.stringify({ model: 'gpt-3.5-turbo', user: `quiet-${n}`, messages: [{ role: 'user', content: 'hello' }] }),
      });
      expect(response.status).toBe(200);
      await response.text();
    }
    await until('the collection after the requests', () => collections(gateway) >= 2, { timeoutMs: 15_000 });
    const line = gateway.output().split('\n').find((l) => l.includes(LINE));
    expect(JSON.parse(line!)).toMatchObject({ msg: LINE, durationMs: expect.any(Number) });
  }, 60_000);
});
