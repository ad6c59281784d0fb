/**
 * Usage exporters against local receivers: the official Stripe SDK pointed by its host/port/
 * protocol settings at a receiver that checks the meter-event wire format, and an OpenMeter
 * receiver that checks CloudEvents; real PostgreSQL. Each request is delivered exactly once
 * (by identifier) through a receiver outage and through a `kill -9` of a real Tollgate process
 * (needs `npm run build`); exports that cannot be delivered land in the dead-letter list and
 * are retried through the API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, graphql, openaiClient, spawnGateway, startTestGateway, testConfigYaml } from './support/gateway';
import { BillingReceiver } from './support/billing-receiver';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { dollarsToPico } from '../src/shared/money';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const STRIPE_KEY = 'sk_test_tollgate';

function exportersYaml(receiver: BillingReceiver, options: { retryMaxAgeSeconds?: number; flushMs?: number } = {}): string {
  const retry = `retry_max_age_seconds: ${options.retryMaxAgeSeconds ?? 3600}, initial_backoff_ms: 100, max_backoff_ms: 400, poll_interval_ms: 100, timeout_ms: 3000`;
  return testConfigYaml({
    extra: `tollgate:
  ledger_flush_interval_ms: ${options.flushMs ?? 50}
  exporters:
    - { type: stripe, api_key: ${STRIPE_KEY}, event_name: llm_charge, value: charge, unit: usd_picos, host: 127.0.0.1, port: ${receiver.port}, protocol: http, ${retry} }
    - { type: stripe, name: stripe-tokens, api_key: ${STRIPE_KEY}, event_name: llm_tokens, value: total_tokens, host: 127.0.0.1, port: ${receiver.port}, protocol: http, ${retry} }
    - { type: openmeter, url: "${receiver.url}", api_key: om_key, event_type: llm_request, source: tollgate-test, ${retry} }
`,
  });
}

interface LedgerRow {
  request_id: string;
  customer_id: string;
  charge: string;
  cost: string;
  tokens: number;
  created_at: Date;
}

async function ledgerRows(url: string): Promise<LedgerRow[]> {
  return queryDatabase<LedgerRow>(
    url,
    `select request_id, customer_id, charge_pico::text as charge, cost_pico::text as cost, prompt_tokens + completion_tokens as tokens, created_at
     from spend_ledger where customer_id is not null order by request_id`,
  );
}

async function chat(base: string, user: string): Promise<string> {
  const { response } = await openaiClient(`${base}/v1`).chat.completions.create({ model: 'mistral', user, messages: [{ role: 'user', content: 'what time is it' }] }).withResponse();
  return response.headers.get('x-request-id')!;
}

/** Every ledger row of a customer with a Stripe id is in each meter exactly once, with the exact value. */
function expectExported(receiver: BillingReceiver, rows: LedgerRow[], stripeIds: Record<string, string>): void {
  expect(receiver.malformed).toEqual([]);
  const billed = rows.filter((row) => stripeIds[row.customer_id]);
  // Two meters on one Stripe account: the identifier is `<request id>:<event name>` (Stripe dedupes account-wide).
  const charges = receiver.meterEvents.filter((e) => e.eventName === 'llm_charge');
  const tokens = receiver.meterEvents.filter((e) => e.eventName === 'llm_tokens');
  expect(charges.map((e) => e.identifier).sort()).toEqual(billed.map((r) => `${r.request_id}:llm_charge`));
  expect(tokens.map((e) => e.identifier).sort()).toEqual(billed.map((r) => `${r.request_id}:llm_tokens`));
  for (const row of billed) {
    const charge = charges.find((e) => e.identifier === `${row.request_id}:llm_charge`)!;
    expect(charge).toMatchObject({ stripeCustomerId: stripeIds[row.customer_id], value: row.charge, timestamp: Math.floor(new Date(row.created_at).getTime() / 1000) });
    expect(tokens.find((e) => e.identifier === `${row.request_id}:llm_tokens`)!.value).toBe(String(row.tokens));
  }
  // OpenMeter bills every customer (subject = the customer id, no Stripe id needed).
  expect(receiver.cloudEvents.map((e) => e.id).sort()).toEqual(rows.map((r) => r.request_id));
  for (const row of rows) {
    const event = receiver.cloudEvents.find((e) => e.id === row.request_id)!;
    expect(event).toMatchObject({ specversion: '1.0', source: 'tollgate-test', type: 'llm_request', subject: row.customer_id });
    // Exact decimal strings: the pico-dollars of the ledger, to the last digit.
    expect(dollarsToPico(event.data.charge as string)).toBe(BigInt(row.charge));
    expect(dollarsToPico(event.data.cost as string)).toBe(BigInt(row.cost));
  }
}

describe('usage exporters (in process, PostgreSQL)', () => {
  let receiver: BillingReceiver;
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let base: string;

  beforeAll(async () => {
    receiver = await new BillingReceiver(STRIPE_KEY).start();
    database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: exportersYaml(receiver, { retryMaxAgeSeconds: 2 }), databaseUrl: database.url });
    base = gateway.url;
  });

  afterAll(async () => {
    await gateway?.stop();
    await receiver?.stop();
    await database?.drop();
  });

  it('sends each request once to Stripe (charge at 1.25× in pico-dollars, and tokens) and to OpenMeter, through a receiver outage', async () => {
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'resale', price_multiplier: 1.25 })).status).toBe(200);
    const created = await api<Record<string, unknown>>(base, 'POST', '/customer/new', { user_id: 'alice', budget_id: 'resale', stripe_customer_id: 'cus_alice' });
    expect(created.status).toBe(200);
    expect(created.body.stripe_customer_id).toBe('cus_alice');
    const viaGraphql = await graphql<{ createCustomer: { stripeCustomerId: string } }>(base, `mutation { createCustomer(input: { id: "bob", budgetId: "resale", stripeCustomerId: "cus_bob" }) { stripeCustomerId } }`);
    expect(viaGraphql.data?.createCustomer.stripeCustomerId).toBe('cus_bob');

    for (const user of ['alice', 'bob', 'alice']) await chat(base, user);
    await receiver.waitFor(() => receiver.meterEvents.length >= 6 && receiver.cloudEvents.length >= 3, 'the first exports');

    // Outage: failing, then down; requests go on being served and metered meanwhile.
    receiver.mode = 'fail';
    await chat(base, 'bob');
    const arrivals = receiver.arrivals;
    await receiver.waitFor(() => receiver.arrivals >= arrivals + 6, 'retries against the failing receiver');
    await receiver.stop();
    await chat(base, 'alice');
    await sleep(300);
    receiver.mode = 'ok';
    await receiver.start();
    await receiver.waitFor(() => receiver.meterEvents.length >= 10 && receiver.cloudEvents.length >= 5, 'the exports after the outage');
    await sleep(500); // nothing more arrives
    const rows = await ledgerRows(database.url);
    expect(rows).toHaveLength(5);
    // 1.25× the cost, to the last pico-dollar, and that is the value Stripe got.
    for (const row of rows) expect(BigInt(row.charge) * 4n).toBe(BigInt(row.cost) * 5n);
    expectExported(receiver, rows, { alice: 'cus_alice', bob: 'cus_bob' });

    const exporters = await api<{ name: string; pending: number; failed: number; lag_seconds: number }[]>(base, 'GET', '/exporters');
    expect(exporters.body.map((e) => [e.name, e.pending, e.failed])).toEqual([
      ['stripe', 0, 0],
      ['stripe-tokens', 0, 0],
      ['openmeter', 0, 0],
    ]);
  });

  it('dead-letters the exports of a customer without a Stripe id, lists them, and delivers them once retried', async () => {
    const requestId = await chat(base, 'carol'); // no stripe_customer_id
    await receiver.waitFor(() => receiver.cloudEvents.some((e) => e.id === requestId), 'carol in OpenMeter');
    const deadline = Date.now() + 20_000;
    let failed: { exporter: string; request_id: string; customer_id: string; last_error: string; event: Record<string, unknown> }[] = [];
    while (failed.length < 2) {
      if (Date.now() > deadline) throw new Error(`exports were not dead-lettered: ${JSON.stringify(failed)}`);
      await sleep(200);
      failed = (await api<typeof failed>(base, 'GET', '/exporters/events?status=failed')).body;
    }
    expect(failed.map((f) => [f.exporter, f.request_id, f.customer_id]).sort()).toEqual([
      ['stripe', requestId, 'carol'],
      ['stripe-tokens', requestId, 'carol'],
    ]);
    expect(failed[0]!.last_error).toMatch(/customer carol has no stripe_customer_id/);
    expect(failed.find((f) => f.exporter === 'stripe')!.event).toMatchObject({ event_name: 'llm_charge', identifier: `${requestId}:llm_charge` });
    const viaGraphql = await graphql<{ usageExports: { nodes: { requestId: string; status: string }[] } }>(base, `{ usageExports(exporter: "stripe") { nodes { requestId status } } }`);
    expect(viaGraphql.data?.usageExports.nodes).toEqual([{ requestId, status: 'failed' }]);

    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer sk-1234' } }).then((r) => r.text());
    expect(metrics).toMatch(/tollgate_exporter_failed\{[^}]*exporter="stripe"[^}]*\} 1/);
    expect(metrics).toMatch(/tollgate_exporter_lag_seconds\{[^}]*exporter="stripe"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/tollgate_exporter_lag_seconds\{[^}]*exporter="openmeter"[^}]*\} 0/);

    // Bad input is a 4xx naming the problem.
    expect((await api(base, 'POST', '/customer/update', { user_id: 'carol', stripe_customer_id: 'not an id!' })).status).toBe(400);
    expect((await api(base, 'GET', '/exporters/events?status=lost')).status).toBe(400);
    expect((await api(base, 'POST', '/exporters/retry', { exporter: 'lago' })).status).toBe(404);

    expect((await api(base, 'POST', '/customer/update', { user_id: 'carol', stripe_customer_id: 'cus_carol' })).status).toBe(200);
    const retried = await api<{ retried: number }>(base, 'POST', '/exporters/retry', { request_id: requestId, exporter: 'stripe' });
    expect(retried.body.retried).toBe(1);
    const viaMutation = await graphql<{ retryUsageExports: number }>(base, `mutation { retryUsageExports(exporter: "stripe-tokens") }`);
    expect(viaMutation.data?.retryUsageExports).toBe(1);
    const carols = () => receiver.meterEvents.filter((e) => e.identifier.startsWith(`${requestId}:`));
    await receiver.waitFor(() => carols().length === 2, 'carol in Stripe');
    expect(carols().map((e) => e.stripeCustomerId)).toEqual(['cus_carol', 'cus_carol']);
    expect((await api<unknown[]>(base, 'GET', '/exporters/events?status=failed')).body).toEqual([]);

    // null clears the Stripe id; /customer/info then keeps LiteLLM's exact shape.
    expect((await api<Record<string, unknown>>(base, 'GET', '/customer/info?end_user_id=carol')).body.stripe_customer_id).toBe('cus_carol');
    expect((await api(base, 'POST', '/customer/update', { user_id: 'carol', stripe_customer_id: null })).status).toBe(200);
    expect(Object.keys((await api<Record<string, unknown>>(base, 'GET', '/customer/info?end_user_id=carol')).body)).not.toContain('stripe_customer_id');
  });
});

describe('a Tollgate process killed with SIGKILL while exports are pending', () => {
  let receiver: BillingReceiver;
  let database: TestDatabase;

  beforeAll(async () => {
    receiver = await new BillingReceiver(STRIPE_KEY).start();
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await receiver?.stop();
    await database?.drop();
  });

  it('delivers every request exactly once (by identifier) after the restart', { timeout: 110_000 }, async () => {
    await receiver.stop(); // down: the exports stay pending
    const dataDir = freshDataDir();
    // No timed flush: reading spend logs flushes phase 1 to the ledger (and the outbox);
    // phase 2 lives only in the crash journal when the process is killed.
    const yaml = exportersYaml(receiver, { flushMs: 600_000 });
    const env = { DATABASE_URL: database.url };
    const victim = await spawnGateway({ yaml, dataDir, env });
    expect((await api(victim.url, 'POST', '/customer/new', { user_id: 'dave', stripe_customer_id: 'cus_dave' })).status).toBe(200);
    for (let i = 0; i < 3; i++) await chat(victim.url, 'dave');
    expect((await api(victim.url, 'GET', '/spend/logs?end_user=dave')).status).toBe(200);
    const deadline = Date.now() + 20_000;
    while ((await queryDatabase<{ n: number }>(database.url, `select count(*)::int as n from usage_exports where attempts >= 2`))[0]!.n < 9) {
      if (Date.now() > deadline) throw new Error(`exports did not reach the outbox:\n${victim.output()}`);
      await sleep(100);
    }
    expect(victim.output()).toMatch(/usage export attempt failed/);
    await chat(victim.url, 'dave');
    await chat(victim.url, 'dave');
    await victim.kill9();
    expect((await ledgerRows(database.url)).length).toBe(3); // the last two are only in the journal

    await receiver.start(); // back, same port
    const revived = await spawnGateway({ yaml, dataDir, env });
    try {
      await receiver.waitFor(() => receiver.meterEvents.length >= 10 && receiver.cloudEvents.length >= 5, 'every export after the restart', 60_000);
      await sleep(500);
      const rows = await ledgerRows(database.url);
      expect(rows).toHaveLength(5);
      expect(receiver.meterEvents).toHaveLength(10);
      expectExported(receiver, rows, { dave: 'cus_dave' });
    } finally {
      await revived.stop();
    }
  });
});
