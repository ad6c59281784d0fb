/**
 * A revoked key's live subscriptions end when the revocation is applied, on the process
 * that revoked it and on every other process sharing PostgreSQL and Redis: no event
 * published after the revoking call answered reaches them. Two gateways in this process,
 * so events can be published on each one's own bus.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { freshDataDir, graphql, testConfigYaml } from './support/gateway';
import { collect, liveClient } from './support/live';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { parseConfig } from '../src/config/load';
import { startGateway, type RunningGateway } from '../src/server/gateway';
import type { BudgetEvent } from '../src/ledger/types';

const prefix = freshRedisPrefix();
let database: TestDatabase;
let first: RunningGateway;
let second: RunningGateway;
const clients: Client[] = [];

function startOne(): Promise<RunningGateway> {
  const config = parseConfig(testConfigYaml(), { TOLLGATE_DATA_DIR: freshDataDir(), DATABASE_URL: database.url, REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix });
  return startGateway(config, { port: 0, host: '127.0.0.1' });
}

function alert(customerId: string, id: string): BudgetEvent {
  return {
    eventId: id,
    type: 'threshold_crossed',
    customerId,
    budgetId: null,
    threshold: 0.5,
    spendPico: 1n,
    maxBudgetPico: 2n,
    softBudgetPico: null,
    periodStartMs: Date.UTC(2026, 11, 1),
    requestId: `req-${id}`,
    atMs: Date.now(),
  };
}

async function adminKey(on: RunningGateway, alias: string) {
  const created = await graphql<{ createApiKey: { key: string; apiKey: { id: string } } }>(on.url, `mutation { createApiKey(alias: "${alias}", scope: admin) { key apiKey { id } } }`);
  return created.data!.createApiKey;
}

/** Subscribes with `key` on `on` and waits until the subscription receives events. */
async function liveAlerts(on: RunningGateway, key: string, customerId: string) {
  const client = liveClient(on.url, key);
  clients.push(client);
  const alerts = collect<{ id: string }>(client, 'subscription ($c: ID) { budgetEvent(customerId: $c) { id } }', { c: customerId });
  for (let n = 0; alerts.delivery.data.length === 0 && n < 200; n++) {
    on.budgetEvents.publish(alert(customerId, `warm-${n}`));
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(alerts.delivery.data.length).toBeGreaterThan(0);
  return alerts;
}

beforeAll(async () => {
  database = await createTestDatabase();
  first = await startOne(); // applies the migrations
  second = await startOne();
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await second?.stop();
  await first?.stop();
  await database?.drop();
  await deleteRedisKeys(prefix);
});

describe('revoking a key with open subscriptions', () => {
  it('ends them on the revoking process before the call answers', async () => {
    const { key, apiKey } = await adminKey(first, 'local-dashboard');
    const alerts = await liveAlerts(first, key, 'rev-local');
    const revoked = await graphql(first.url, 'mutation ($id: ID!) { revokeApiKey(id: $id) { revoked } }', { id: apiKey.id });
    expect(revoked.errors).toBeUndefined();
    first.budgetEvents.publish(alert('rev-local', 'after-revocation'));
    await alerts.until((d) => d.failure !== null || d.completed, 10_000);
    expect((alerts.delivery.failure as { code?: number }).code).toBe(4403);
    expect(alerts.delivery.data.map((a) => a.id)).not.toContain('after-revocation');
  });

  it('ends them on another process once it has applied the revocation (before the call answers)', async () => {
    const { key, apiKey } = await adminKey(first, 'remote-dashboard');
    const alerts = await liveAlerts(second, key, 'rev-remote');
    // Revoked through the first process; its answer waits for the second to acknowledge.
    const revoked = await graphql(first.url, 'mutation ($id: ID!) { revokeApiKey(id: $id) { revoked } }', { id: apiKey.id });
    expect(revoked.errors).toBeUndefined();
    second.budgetEvents.publish(alert('rev-remote', 'after-revocation'));
    await alerts.until((d) => d.failure !== null || d.completed, 10_000);
    expect((alerts.delivery.failure as { code?: number }).code).toBe(4403);
    expect(alerts.delivery.data.map((a) => a.id)).not.toContain('after-revocation');
  });
});
