/**
 * Live subscriptions over graphql-ws against a running gateway: per-customer filtering and
 * order under concurrent requests, refusal without an admin key, a stalled subscriber that
 * must neither delay completions nor grow without bound, and budget alerts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import WebSocket from 'ws';
import type { Client } from 'graphql-ws';
import { api, freshDataDir, graphql, MASTER_KEY, openaiClient, testConfigYaml } from './support/gateway';
import { collect, liveClient, wsUrl } from './support/live';
import { subscriptionsOpen } from './support/metrics';
import { until } from './support/poll';
import { dollarsToPico, picoToDollars } from '../src/shared/money';
import type { BudgetEvent } from '../src/ledger/types';
import { parseConfig } from '../src/config/load';
import { startGateway, type RunningGateway } from '../src/server/gateway';

interface SpendUpdate {
  customerId: string;
  cost: number;
  spend: number;
  maxBudget: number | null;
  budgetId: string | null;
  model: string;
  promptTokens: number;
  completionTokens: number;
  requestId: string;
  at: string;
}

const SPEND_UPDATED = `subscription ($customerId: ID) {
  spendUpdated(customerId: $customerId) { customerId cost spend maxBudget budgetId model promptTokens completionTokens requestId at }
}`;

/** Small, so a stalled subscriber is cut off after a few hundred completions (well within graphql-ws's 12 s keep-alive). */
const QUEUE_LIMIT = 200;

let gateway: RunningGateway;
const clients: Client[] = [];

function client(key: string | null = MASTER_KEY): Client {
  const created = liveClient(gateway.url, key);
  clients.push(created);
  return created;
}

/** One completion through the OpenAI SDK; returns its request id and cost header. */
async function complete(user: string, content = 'hello there', model = 'gpt-3.5-turbo') {
  const { data, response } = await openaiClient(`${gateway.url}/v1`)
    .chat.completions.create({ model, user, messages: [{ role: 'user', content }] })
    .withResponse();
  return { requestId: response.headers.get('x-request-id')!, cost: response.headers.get('x-litellm-response-cost')!, usage: data.usage! };
}

beforeAll(async () => {
  // The stalled-subscriber test asks for one field under 100 aliases (bulky events).
  const config = parseConfig(testConfigYaml({ extra: 'tollgate:\n  graphql_limits:\n    max_aliases: 100\n' }), { TOLLGATE_DATA_DIR: freshDataDir() });
  gateway = await startGateway(config, { port: 0, host: '127.0.0.1', subscriberQueueLimit: QUEUE_LIMIT });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await gateway?.stop();
});

describe('spendUpdated', () => {
  it("delivers a customer's events only to its subscribers, in order, from concurrent requests", async () => {
    await api(gateway.url, 'POST', '/budget/new', { budget_id: 'live-tier', max_budget: 50 });
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'live-a', budget_id: 'live-tier' });
    const forA = collect<SpendUpdate>(client(), SPEND_UPDATED, { customerId: 'live-a' });
    const forAll = collect<SpendUpdate>(client(), SPEND_UPDATED);
    // A subscription starts on the server a moment after the client sends it: wait until
    // both receive requests of live-a before the measured burst.
    await warmUp('live-a', () => forA.delivery.data.length > 0 && forAll.delivery.data.some((u) => u.customerId === 'live-a'));
    await forAll.until((d) => d.data.filter((u) => u.customerId === 'live-a').length === forA.delivery.data.length);
    const before = forA.delivery.data.length;
    const allBefore = forAll.delivery.data.length;

    const sent = await Promise.all(
      Array.from({ length: 24 }, (_, i) => complete(i % 2 === 0 ? 'live-a' : 'live-b', `request ${i} ${'word '.repeat(i)}`)),
    );
    const sentA = sent.filter((_, i) => i % 2 === 0);
    const sentB = sent.filter((_, i) => i % 2 === 1);
    await forA.until((d) => d.data.length === before + sentA.length);
    await forAll.until((d) => d.data.length === allBefore + sent.length);

    const receivedA = forA.delivery.data.slice(before);
    expect(receivedA.every((u) => u.customerId === 'live-a')).toBe(true);
    expect(new Set(receivedA.map((u) => u.requestId))).toEqual(new Set(sentA.map((s) => s.requestId)));
    // In order: each event's period spend is the previous one plus this request's cost, exactly.
    let spend = dollarsToPico(forA.delivery.data[before - 1]!.spend);
    for (const update of receivedA) {
      spend += dollarsToPico(update.cost);
      expect(dollarsToPico(update.spend)).toBe(spend);
      expect(update).toMatchObject({ model: 'gpt-3.5-turbo', maxBudget: 50, budgetId: 'live-tier' });
      expect(update.promptTokens).toBeGreaterThan(0);
      expect(update.completionTokens).toBeGreaterThan(0);
      expect(Number.isNaN(Date.parse(update.at))).toBe(false);
    }
    for (const request of sentA) {
      const update = receivedA.find((u) => u.requestId === request.requestId)!;
      expect(dollarsToPico(update.cost)).toBe(dollarsToPico(request.cost));
      expect(update.promptTokens).toBe(request.usage.prompt_tokens);
      expect(update.completionTokens).toBe(request.usage.completion_tokens);
    }
    const info = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=live-a');
    expect(dollarsToPico(info.body.spend)).toBe(spend);

    // The all-customers subscriber saw both customers, each in its own order.
    const receivedAll = forAll.delivery.data.slice(allBefore);
    expect(new Set(receivedAll.map((u) => u.requestId))).toEqual(new Set(sent.map((s) => s.requestId)));
    const bSpends = receivedAll.filter((u) => u.customerId === 'live-b').map((u) => dollarsToPico(u.spend));
    expect(bSpends).toHaveLength(sentB.length);
    expect([...bSpends].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(bSpends);
    forA.dispose();
    forAll.dispose();
  });

  it('refuses a connection without an admin key', async () => {
    const { key: inferenceKey } = (await api<{ key: string }>(gateway.url, 'POST', '/key/generate', { key_alias: 'app' })).body;
    expect(inferenceKey).toMatch(/^sk-/);
    for (const key of [null, 'sk-wrong', inferenceKey]) {
      const refused = collect<SpendUpdate>(client(key), SPEND_UPDATED);
      await refused.until((d) => d.failure !== null);
      expect((refused.delivery.failure as { code?: number }).code).toBe(4403);
      expect(refused.delivery.data).toHaveLength(0);
    }
    // A raw connection that skips connection_init entirely never gets to subscribe either.
    const socket = new WebSocket(wsUrl(gateway.url), 'graphql-transport-ws');
    await once(socket, 'open');
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SPEND_UPDATED } }));
    const [code] = (await once(socket, 'close')) as [number];
    expect(code).toBe(4401);
  });

  it('does not let a stalled subscriber delay completions, and cuts it off once it falls too far behind', async () => {
    // A subscriber that stops reading its socket: once the kernel buffers are full, the
    // server cannot send to it any more.
    const stalled = new WebSocket(wsUrl(gateway.url), 'graphql-transport-ws');
    const stalledMessages: { type: string; id?: string; payload?: unknown }[] = [];
    stalled.on('message', (data) => stalledMessages.push(JSON.parse(String(data))));
    await once(stalled, 'open');
    stalled.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${MASTER_KEY}` } }));
    await until('the stalled client’s connection_ack', () => stalledMessages.some((m) => m.type === 'connection_ack'), { intervalMs: 20 });
    // It asks for the customer id a hundred times (aliases), so each event is ~20 kB and its
    // socket buffers fill after a few hundred events rather than after thousands.
    const bulky = Array.from({ length: 100 }, (_, i) => `id${i}: customerId`).join(' ');
    stalled.send(JSON.stringify({ id: 'all', type: 'subscribe', payload: { query: `subscription { spendUpdated { requestId spend ${bulky} } }` } }));
    const healthy = collect<SpendUpdate>(client(), SPEND_UPDATED, { customerId: 'steady' });
    await warmUp('steady', () => stalledMessages.some((m) => m.type === 'next') && healthy.delivery.data.length > 0);
    const warmUpEvents = healthy.delivery.data.length;
    (stalled as unknown as { _socket: import('node:net').Socket })._socket.pause();

    // A flood of real completions from many customers, with "steady" among them.
    // About 200 events fill the stalled socket's buffers and QUEUE_LIMIT more its queue.
    const flood = 600;
    const longId = (i: number) => `flood-${i % 50}-${'x'.repeat(200)}`;
    const steadyIds: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < flood) {
          const i = next++;
          const user = i % 100 === 0 ? 'steady' : longId(i);
          const result = await complete(user, 'x');
          if (user === 'steady') steadyIds.push(result.requestId);
        }
      }),
    );
    // Every completion came back while the subscriber was stalled, and the healthy
    // subscriber got each of its customer's events.
    await healthy.until((d) => d.data.length === warmUpEvents + steadyIds.length);
    expect(healthy.delivery.data.slice(warmUpEvents).map((u) => u.requestId).sort()).toEqual([...steadyIds].sort());
    expect(healthy.delivery.errors).toEqual([]);

    // The stalled subscriber resumes: it gets what was queued for it, then one error saying
    // it fell behind, then the end; not all of the flood (its queue was bounded).
    (stalled as unknown as { _socket: import('node:net').Socket })._socket.resume();
    await until('the stalled client’s complete', () => stalledMessages.some((m) => m.type === 'complete' && m.id === 'all'), { timeoutMs: 30_000, intervalMs: 20 });
    const nexts = stalledMessages.filter((m) => m.type === 'next');
    const cutOff = nexts[nexts.length - 1]!.payload as { errors?: { message: string; extensions: { code: string } }[] };
    expect(cutOff.errors?.[0]?.extensions.code).toBe('SUBSCRIBER_TOO_SLOW');
    expect(cutOff.errors?.[0]?.message).toContain(`fell more than ${QUEUE_LIMIT} events behind`);
    expect(nexts.length - 1).toBeLessThan(flood);
    expect(nexts.length - 1).toBeGreaterThan(QUEUE_LIMIT);
    stalled.close();
    healthy.dispose();
  });
});

describe('revoked keys', () => {
  it('closes the live subscriptions of a key revoked after it connected', async () => {
    const created = await graphql<{ createApiKey: { key: string; apiKey: { id: string } } }>(gateway.url, `mutation { createApiKey(alias: "dashboard", scope: admin) { key apiKey { id } } }`);
    const { key, apiKey } = created.data!.createApiKey;
    const updates = collect<SpendUpdate>(client(key), `subscription { spendUpdated { customerId } }`);
    // Complete requests until the subscription (live a moment after it is sent) sees one.
    for (let attempt = 0; attempt < 100 && updates.delivery.data.length === 0; attempt++) {
      await complete('revocation-watch');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(updates.delivery.data.length).toBeGreaterThan(0);
    await graphql(gateway.url, `mutation($id: ID!) { revokeApiKey(id: $id) { revoked } }`, { id: apiKey.id });
    await updates.until((delivered) => delivered.failure !== null || delivered.completed, 10_000);
    expect(String((updates.delivery.failure as { code?: number })?.code ?? '')).toBe('4403');
  });
});

describe('budgetEvent', () => {
  it("delivers a customer's budget alerts, mapped to dollars, filtered by customer", async () => {
    // Publishes on the gateway's BudgetEventBus directly, to pin down the mapping and the
    // filter; the test below drives real alerts from real requests.
    const query = `subscription ($customerId: ID) {
      budgetEvent(customerId: $customerId) { id type customerId budgetId threshold spend maxBudget softBudget periodStart requestId at }
    }`;
    const forC = collect<Record<string, unknown>>(client(), query, { customerId: 'alert-c' });
    const forAll = collect<Record<string, unknown>>(client(), query);
    const event = (customerId: string, n: number): BudgetEvent => ({
      eventId: `evt-${customerId}-${n}`,
      type: 'threshold_crossed',
      customerId,
      budgetId: 'tier',
      threshold: 0.85,
      spendPico: dollarsToPico('3.4'),
      maxBudgetPico: dollarsToPico(4),
      softBudgetPico: null,
      periodStartMs: Date.UTC(2026, 10, 1),
      requestId: `req-${n}`,
      atMs: Date.UTC(2026, 10, 28, 12),
    });
    // Publish until both subscriptions are live (they start a moment after the client sends them).
    let n = 0;
    await until('both subscriptions to be live', () => {
      gateway.budgetEvents.publish(event('alert-c', n++));
      return forC.delivery.data.length > 0 && forAll.delivery.data.length > 0;
    }, { intervalMs: 20 });
    gateway.budgetEvents.publish(event('alert-d', 100));
    gateway.budgetEvents.publish({ ...event('alert-c', 101), type: 'budget_crossed', threshold: 1, spendPico: dollarsToPico(4), softBudgetPico: dollarsToPico(2) });
    await forAll.until((d) => d.data.some((e) => e.id === 'evt-alert-c-101'));
    await forC.until((d) => d.data.some((e) => e.id === 'evt-alert-c-101'));
    expect(forC.delivery.data.every((e) => e.customerId === 'alert-c')).toBe(true);
    expect(forC.delivery.data.map((e) => e.id)).toEqual(Array.from({ length: forC.delivery.data.length - 1 }, (_, i) => `evt-alert-c-${n - forC.delivery.data.length + 1 + i}`).concat('evt-alert-c-101'));
    expect(forAll.delivery.data.some((e) => e.customerId === 'alert-d')).toBe(true);
    expect(forC.delivery.data[forC.delivery.data.length - 1]).toEqual({
      id: 'evt-alert-c-101',
      type: 'budget_crossed',
      customerId: 'alert-c',
      budgetId: 'tier',
      threshold: 1,
      spend: 4,
      maxBudget: 4,
      softBudget: 2,
      periodStart: '2026-11-01T00:00:00.000Z',
      requestId: 'req-101',
      at: '2026-11-28T12:00:00.000Z',
    });
    expect(forAll.delivery.data.find((e) => e.customerId === 'alert-c' && e.type === 'threshold_crossed')).toMatchObject({ type: 'threshold_crossed', threshold: 0.85, spend: 3.4, softBudget: null });
    forC.dispose();
    forAll.dispose();
  });
});

describe('budgetEvent from real requests', () => {
  it('delivers the alerts a completion fires when it crosses the thresholds of its budget', async () => {
    // Price one request, then give a customer a budget its first request crosses in full.
    const probe = await complete('alert-probe', 'how much is this?');
    const cost = dollarsToPico(probe.cost);
    const created = await api(gateway.url, 'POST', '/customer/new', { user_id: 'alert-real', max_budget: picoToDollars(cost), soft_budget: picoToDollars(cost / 2n) });
    expect(created.status).toBe(200);
    const alerts = collect<{ type: string; threshold: number | null; customerId: string; requestId: string }>(
      client(),
      `subscription { budgetEvent(customerId: "alert-real") { type threshold customerId requestId } }`,
    );
    await subscriptionsOpen(gateway.url, 1); // listening before the request that crosses the thresholds
    const { requestId } = await complete('alert-real', 'how much is this?');
    await alerts.until((delivered) => delivered.data.length >= 4);
    expect(alerts.delivery.data.map((alert) => [alert.type, alert.threshold]).sort()).toEqual(
      [['budget_crossed', 1], ['soft_budget_crossed', null], ['threshold_crossed', 0.85], ['threshold_crossed', 0.95]].sort(),
    );
    expect(alerts.delivery.data.every((alert) => alert.requestId === requestId)).toBe(true);
    alerts.dispose();
  });
});

describe('spendReport', () => {
  it('groups the ledger by customer, model and day for the charts', async () => {
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    await complete('report-a', 'one', 'mistral');
    await complete('report-a', 'two', 'gpt-3.5-turbo');
    const query = `query ($from: DateTimeISO!, $to: DateTimeISO!, $groupBy: SpendGroup!, $customerId: ID) {
      spendReport(from: $from, to: $to, groupBy: $groupBy, customerId: $customerId) { key spend requests }
    }`;
    const byModel = await graphql<{ spendReport: { key: string; requests: number }[] }>(gateway.url, query, { from, to, groupBy: 'model', customerId: 'report-a' });
    expect(byModel.data!.spendReport.map((r) => [r.key, r.requests]).sort()).toEqual([['gpt-3.5-turbo', 1], ['mistral', 1]]);
    const byDay = await graphql<{ spendReport: { key: string; requests: number }[] }>(gateway.url, query, { from, to, groupBy: 'day', customerId: 'report-a' });
    expect(byDay.data!.spendReport.reduce((sum, r) => sum + r.requests, 0)).toBe(2);
    expect(byDay.data!.spendReport[0]!.key).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const byCustomer = await graphql<{ spendReport: { key: string }[] }>(gateway.url, query, { from, to, groupBy: 'customer' });
    expect(byCustomer.data!.spendReport.map((r) => r.key)).toContain('report-a');
  });
});

/** Sends requests of `user` until `live` holds: its subscriptions have started on the server. */
async function warmUp(user: string, live: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 50 && !live(); attempt++) {
    await complete(user, 'warm up');
    await until('the subscription to be live', live, { timeoutMs: 200, intervalMs: 20 }).catch(() => undefined);
  }
  expect(live()).toBe(true);
}

