/**
 * Webhooks across processes on one PostgreSQL database: two gateways fire each budget alert
 * once between them; a real Tollgate process killed with SIGKILL while its events are
 * pending (in the outbox, and in the crash journal) delivers them all once restarted.
 * Needs `npm run build` (spawns bin/tollgate.js).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, openaiClient, spawnGateway, startTestGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { WebhookReceiver } from './support/webhook-receiver';
import { chat, FAST_RETRIES, spendOf, waitForNoPendingDeliveries, webhookYaml } from './support/webhooks';
import { picoToDecimalString } from '../src/shared/money';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('two gateways sharing one database', () => {
  let receiver: WebhookReceiver;
  let database: TestDatabase;
  let first: Awaited<ReturnType<typeof startTestGateway>>;
  let second: Awaited<ReturnType<typeof startTestGateway>>;

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    database = await createTestDatabase();
    const options = { yaml: webhookYaml(FAST_RETRIES), databaseUrl: database.url, env: { WEBHOOK_URL: receiver.url } };
    first = await startTestGateway(options);
    const unit = spendOf(await chat(openaiClient(`${first.url}/v1`), 'probe'));
    await api(first.url, 'POST', '/customer/new', { user_id: 'shared', max_budget: picoToDecimalString(6n * unit), soft_budget: picoToDecimalString(3n * unit) });
    second = await startTestGateway(options); // loads the customer and its budget
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    await receiver?.stop();
    await database?.drop();
  });

  it('fires each alert once although each process saw only half of the spend', async () => {
    const clients = [openaiClient(`${first.url}/v1`), openaiClient(`${second.url}/v1`)];
    // Three rounds of one request on each gateway at the same time: their batches race.
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(clients.map((client) => chat(client, 'shared')));
      for (const result of results) expect(typeof result).toBe('bigint');
    }
    await receiver.waitFor(() => receiver.events((p) => p.customer_id === 'shared').length >= 6 + 4, 'spend_tracked and alerts of shared');
    await waitForNoPendingDeliveries(first.url);
    await sleep(500);
    const events = receiver.events((p) => p.customer_id === 'shared');
    expect(events.filter((e) => e.payload.event === 'spend_tracked')).toHaveLength(6);
    // Soft budget at 3 of 6 requests; 0.85, 0.95 and the budget at the 6th (5/6 < 0.85).
    expect(events.filter((e) => e.payload.event !== 'spend_tracked').map((e) => `${e.payload.event}:${e.payload.threshold}`).sort()).toEqual([
      'budget_crossed:1',
      'soft_budget_crossed:null',
      'threshold_crossed:0.85',
      'threshold_crossed:0.95',
    ]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    const rows = await queryDatabase<{ n: number }>(database.url, `select count(*)::int as n from budget_alerts where customer_id = 'shared'`);
    expect(rows[0]!.n).toBe(4);
  });
});

/** A webhook receiver and a database of their own for one describe block. */
function receiverAndDatabase(): { receiver: WebhookReceiver; database: TestDatabase } {
  const fixture = {} as { receiver: WebhookReceiver; database: TestDatabase };
  beforeAll(async () => {
    fixture.receiver = await new WebhookReceiver().start();
    fixture.database = await createTestDatabase();
  });
  afterAll(async () => {
    await fixture.receiver?.stop();
    await fixture.database?.drop();
  });
  return fixture;
}

describe('a Tollgate process killed with SIGKILL', () => {
  const fixture = receiverAndDatabase();

  it('delivers the events pending at the kill once restarted, each once', { timeout: 110_000 }, async () => {
    const { receiver, database } = fixture;
    await receiver.stop(); // down: everything stays pending
    const dataDir = freshDataDir();
    // No timed flush during the test: reading spend logs flushes phase 1 into the ledger (and
    // the outbox); phase 2 is then only in the crash journal when the process is killed.
    const yaml = webhookYaml(FAST_RETRIES, { flushMs: 600_000 });
    const env = { DATABASE_URL: database.url, WEBHOOK_URL: receiver.url };
    const victim = await spawnGateway({ yaml, dataDir, env });
    const client = openaiClient(`${victim.url}/v1`);
    const unit = spendOf(await chat(client, 'probe'));
    await api(victim.url, 'POST', '/customer/new', { user_id: 'killed', max_budget: picoToDecimalString(4n * unit) });
    for (let i = 0; i < 3; i++) expect(await chat(client, 'killed')).toBe(unit);
    // Phase 1: these reach the outbox and fail to be delivered (visible in the logs).
    expect((await api(victim.url, 'GET', '/spend/logs?end_user=killed')).status).toBe(200);
    const deadline = Date.now() + 20_000;
    while ((await queryDatabase<{ n: number }>(database.url, `select count(*)::int as n from webhook_deliveries where attempts >= 2`))[0]!.n < 4) {
      if (Date.now() > deadline) throw new Error(`events did not reach the outbox:\n${victim.output()}`);
      await sleep(100);
    }
    expect(victim.output()).toMatch(/webhook delivery attempt failed/);
    // Phase 2: the 4th request crosses 0.85, 0.95 and the budget; kill before the next flush.
    expect(await chat(client, 'killed')).toBe(unit);
    expect(await chat(client, 'other')).toBe(unit);
    await victim.kill9();
    const ledgerAtKill = await queryDatabase<{ n: number }>(database.url, `select count(*)::int as n from spend_ledger`);
    expect(ledgerAtKill[0]!.n).toBe(4); // probe + 3: the last two requests live only in the journal

    await receiver.start(); // back up, same port
    const revived = await spawnGateway({ yaml, dataDir, env });
    try {
      const expected = 1 + 4 + 1 + 3; // probe, 4 × killed, other, 3 alerts
      await receiver.waitFor(() => receiver.received.length >= expected, 'every event after the restart', 60_000);
      await waitForNoPendingDeliveries(revived.url, 60_000);
      await sleep(500);
      const events = receiver.received;
      expect(events).toHaveLength(expected);
      expect(new Set(events.map((e) => e.id)).size).toBe(expected);
      expect(events.filter((e) => e.payload.event === 'spend_tracked').map((e) => e.payload.customer_id).sort()).toEqual(['killed', 'killed', 'killed', 'killed', 'other', 'probe']);
      expect(events.filter((e) => e.payload.event !== 'spend_tracked').map((e) => `${e.payload.event}:${e.payload.threshold}`).sort()).toEqual(['budget_crossed:1', 'threshold_crossed:0.85', 'threshold_crossed:0.95']);
      // The ledger agrees: an event exists exactly for each metered request.
      const ledger = await queryDatabase<{ n: number }>(database.url, `select count(*)::int as n from spend_ledger`);
      expect(ledger[0]!.n).toBe(6);
    } finally {
      await revived.stop();
    }
  });
});

describe('a gateway stopping with webhook deliveries claimed ahead', () => {
  const fixture = receiverAndDatabase();

  it('hands the claimed but unsent deliveries back due at once, and its successor sends each once', { timeout: 90_000 }, async () => {
    const { receiver, database } = fixture;
    const pendingOf = () =>
      queryDatabase<{ attempts: number; n: number; due: number }>(
        database.url,
        `select attempts, count(*)::int as n, count(*) filter (where next_attempt_at <= now())::int as due
         from webhook_deliveries where status = 'pending' group by attempts order by attempts`,
      );
    receiver.mode = 'stall';
    // Stopping waits for the attempts the receiver holds until they time out: long enough that
    // none times out (and lets the next queued ones go) before the stop. 8 s was not, once, on
    // a loaded CI machine: the 12 requests and the claims took longer, and 12 were held.
    // The 12 events must reach the outbox in one ledger batch, so that one claim takes them
    // all: sent one after another across 50 ms batches, a claim could find only some, and the
    // dispatcher does not claim again while its queue holds a round (once, on a loaded CI
    // machine, 9 were claimed).
    const options = { yaml: webhookYaml({ ...FAST_RETRIES, webhook_timeout_ms: 20_000 }, { flushMs: 2_000 }), databaseUrl: database.url, env: { WEBHOOK_URL: receiver.url } };
    const first = await startTestGateway(options);
    const client = openaiClient(`${first.url}/v1`);
    for (const cost of await Promise.all(Array.from({ length: 12 }, (_, i) => chat(client, `ahead-${i % 3}`)))) spendOf(cost);
    // All 12 claimed (attempts 1), though only the per-URL limit of 4 is in flight.
    await expect.poll(async () => (await pendingOf()).find((row) => row.attempts === 1)?.n ?? 0, { timeout: 20_000, interval: 50 }).toBe(12);
    await expect.poll(() => receiver.stalledCount, { timeout: 10_000 }).toBe(4);
    await first.stop();
    // The 4 attempts the receiver held timed out and wait for their retry; the 8 never sent
    // are pending again as if never claimed, due now rather than after their lease.
    const rows = await pendingOf();
    expect(rows.find((row) => row.attempts === 0)).toEqual({ attempts: 0, n: 8, due: 8 });
    expect(rows.find((row) => row.attempts === 1)?.n).toBe(4);

    receiver.release(); // answers the held requests; they were abandoned on timeout anyway
    const before = receiver.received.length;
    const second = await startTestGateway(options);
    try {
      await waitForNoPendingDeliveries(second.url, 30_000);
      const ids = receiver.received.slice(before).map((event) => event.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(12);
    } finally {
      await second.stop();
    }
  });
});
