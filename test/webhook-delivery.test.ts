/**
 * Webhook delivery when receivers misbehave: down for a while, failing until their retry time
 * runs out (then listed as failed and retried by hand), slow; several URLs; spend_tracked
 * switched off; configurable thresholds; the /health/services test event; config errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import type OpenAI from 'openai';
import { api, graphql, openaiClient, startTestGateway } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { WebhookReceiver } from './support/webhook-receiver';
import { until } from './support/poll';
import { picoToDecimalString } from '../src/shared/money';
import { chat, FAST_RETRIES, spendOf, waitForNoPendingDeliveries, webhookYaml } from './support/webhooks';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// A secret in the Standard Webhooks format: the key is the base64-decoded part.
const STANDARD_SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

interface DeliveryNode {
  eventId: string;
  event: string;
  url: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  payload: Record<string, unknown>;
}
const DELIVERY_FIELDS = 'eventId event url status attempts lastStatusCode lastError payload';

async function deliveries(base: string, status: 'pending' | 'delivered' | 'failed'): Promise<DeliveryNode[]> {
  const result = await graphql<{ webhookDeliveries: { nodes: DeliveryNode[] } }>(base, `query($status: WebhookDeliveryStatus!) { webhookDeliveries(status: $status, first: 1000) { nodes { ${DELIVERY_FIELDS} } } }`, { status });
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data!.webhookDeliveries.nodes;
}

describe('delivery to a receiver that is down, then slow', () => {
  let receiver: WebhookReceiver;
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let client: OpenAI;
  let unit: bigint;

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: webhookYaml(FAST_RETRIES), databaseUrl: database.url, env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: STANDARD_SECRET } });
    client = openaiClient(`${gateway.url}/v1`);
    unit = spendOf(await chat(client, 'probe'));
    await receiver.waitFor(() => receiver.received.length === 1, 'the probe event');
  });

  afterAll(async () => {
    await gateway?.stop();
    await receiver?.stop();
    await database?.drop();
  });

  it('delivers every event exactly once after the receiver was down for a while', async () => {
    await receiver.stop(); // connections refused from now on
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'down-budget', max_budget: picoToDecimalString(4n * unit) });
    const requests: Promise<bigint | 'refused'>[] = [];
    for (let i = 0; i < 4; i++) requests.push(chat(client, 'down-budget'), chat(client, `down-${i % 2}`));
    for (const result of await Promise.all(requests)) expect(result).toBe(unit);
    const expected = 8 + 3; // 8 spend_tracked + threshold 0.85, 0.95 and budget_crossed at the 4th request

    // While it is down, deliveries are retried with backoff and the failures are visible.
    const pending = await until('several failed attempts', async () => {
      const nodes = await deliveries(gateway.url, 'pending');
      return nodes.length === expected && nodes.every((n) => n.attempts >= 2) && nodes;
    }, { timeoutMs: 30_000 });
    expect(pending[0]!.lastError).toMatch(/ECONNREFUSED|connect/i);
    expect(pending[0]!.lastStatusCode).toBeNull();

    await receiver.start(); // same port
    await receiver.waitFor(() => receiver.received.length >= 1 + expected, 'every event after the receiver came back');
    await waitForNoPendingDeliveries(gateway.url);
    await sleep(500); // and nothing arrives twice later
    const events = receiver.received.slice(1);
    expect(events).toHaveLength(expected);
    expect(new Set(events.map((e) => e.id)).size).toBe(expected);
    expect(events.filter((e) => e.payload.event === 'spend_tracked')).toHaveLength(8);
    expect(events.filter((e) => e.payload.event !== 'spend_tracked').map((e) => `${e.payload.event}:${e.payload.threshold}`).sort()).toEqual(['budget_crossed:1', 'threshold_crossed:0.85', 'threshold_crossed:0.95']);
    // Every attempt was signed with the decoded whsec_ key.
    const key = Buffer.from(STANDARD_SECRET.slice('whsec_'.length), 'base64');
    for (const event of events) expect(event.signature).toBe(`v1,${createHmac('sha256', key).update(`${event.id}.${event.timestamp}.${event.body}`).digest('base64')}`);
  });

  it('answers completions while the receiver stalls, and delivers once it answers', async () => {
    const before = receiver.received.length;
    receiver.mode = 'stall';
    for (let i = 0; i < 10; i++) {
      expect(await chat(client, `slow-${i}`)).toBe(unit);
      // Streaming works too while deliveries hang.
      const stream = await client.chat.completions.create({ model: 'mistral', user: `slow-stream-${i}`, stream: true, messages: [{ role: 'user', content: 'hi' }] });
      for await (const _chunk of stream) {
        /* drain */
      }
    }
    await until('the receiver to hold attempts', () => receiver.stalledCount > 0, { timeoutMs: 30_000 });
    // Every completion above returned while the receiver held deliveries unanswered, and
    // attempts in flight stay within the per-URL bound (default 4).
    expect(receiver.stalledCount).toBeGreaterThan(0);
    expect(receiver.stalledCount).toBeLessThanOrEqual(4);
    receiver.release();
    await receiver.waitFor(() => new Set(receiver.received.slice(before).map((e) => e.id)).size === 20, 'the 20 events after the stall');
    await waitForNoPendingDeliveries(gateway.url);
    const ids = receiver.received.slice(before).map((e) => e.id);
    expect(new Set(ids).size).toBe(20);
  });
});

describe('failed deliveries, several URLs, settings', () => {
  let good: WebhookReceiver;
  let bad: WebhookReceiver;
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let client: OpenAI;
  let unit: bigint;

  beforeAll(async () => {
    good = await new WebhookReceiver().start();
    bad = await new WebhookReceiver().start();
    bad.mode = 'fail';
    database = await createTestDatabase();
    const args = { ...FAST_RETRIES, webhook_retry_max_age_seconds: 1, send_spend_tracked: false, budget_alert_thresholds: [0.9, 0.5] };
    gateway = await startTestGateway({ yaml: webhookYaml(args), databaseUrl: database.url, env: { WEBHOOK_URL: `${good.url}, ${bad.url}` } });
    client = openaiClient(`${gateway.url}/v1`);
    unit = spendOf(await chat(client, 'probe'));
  });

  afterAll(async () => {
    await gateway?.stop();
    await good?.stop();
    await bad?.stop();
    await database?.drop();
  });

  it('sends only budget alerts when spend_tracked is off, at the configured thresholds, to every URL', async () => {
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'alerted', max_budget: picoToDecimalString(2n * unit) });
    expect(await chat(client, 'alerted')).toBe(unit);
    expect(await chat(client, 'alerted')).toBe(unit);
    await good.waitFor(() => good.received.length >= 3, 'the alerts');
    await sleep(300);
    expect(good.received.map((e) => `${e.payload.event}:${e.payload.threshold}`).sort()).toEqual(['budget_crossed:1', 'threshold_crossed:0.5', 'threshold_crossed:0.9']);
    expect(good.received.every((e) => e.signature === undefined)).toBe(true); // no WEBHOOK_SECRET: unsigned
    expect(bad.arrivals).toBeGreaterThanOrEqual(3); // the same events were offered to the second URL
  });

  it('lists deliveries that ran out of retry time as failed, and retries them on request', async () => {
    const failed = await until('the deliveries to the failing URL to fail', async () => {
      const nodes = await deliveries(gateway.url, 'failed');
      return nodes.length === 3 && nodes;
    }, { timeoutMs: 30_000 });
    for (const node of failed) {
      expect(node).toMatchObject({ url: bad.url, status: 'failed', lastStatusCode: 500, lastError: 'receiver answered HTTP 500' });
      expect(node.attempts).toBeGreaterThanOrEqual(2);
    }
    expect(new Set(failed.map((n) => n.eventId))).toEqual(new Set(good.received.map((e) => e.id)));

    bad.mode = 'ok';
    const [first, ...rest] = failed;
    const retried = await graphql<{ retryWebhookDelivery: DeliveryNode[] }>(gateway.url, `mutation($id: ID!, $url: String) { retryWebhookDelivery(eventId: $id, url: $url) { ${DELIVERY_FIELDS} } }`, { id: first!.eventId, url: bad.url });
    expect(retried.errors).toBeUndefined();
    expect(retried.data!.retryWebhookDelivery.map((n) => `${n.url}:${n.status}`).sort()).toEqual([`${bad.url}:pending`, `${good.url}:delivered`].sort());
    await bad.waitFor(() => bad.received.length === 1, 'the retried delivery');
    expect(bad.received[0]!.id).toBe(first!.eventId);

    const all = await graphql<{ retryFailedWebhookDeliveries: number }>(gateway.url, `mutation { retryFailedWebhookDeliveries }`);
    expect(all.data!.retryFailedWebhookDeliveries).toBe(rest.length);
    await bad.waitFor(() => bad.received.length === 3, 'the other retried deliveries');
    await waitForNoPendingDeliveries(gateway.url);
    expect(new Set(bad.received.map((e) => e.id))).toEqual(new Set(good.received.map((e) => e.id)));
    expect(await deliveries(gateway.url, 'failed')).toEqual([]);

    // Nothing left to retry, and unknown ids are named.
    const again = await graphql(gateway.url, `mutation($id: ID!) { retryWebhookDelivery(eventId: $id) { eventId } }`, { id: first!.eventId });
    expect(again.errors![0]).toMatchObject({ message: expect.stringMatching(/Nothing to retry/), extensions: { status: 409 } });
    const unknown = await graphql(gateway.url, `mutation { retryWebhookDelivery(eventId: "evt_nope") { eventId } }`);
    expect(unknown.errors![0]).toMatchObject({ message: 'No webhook event with id evt_nope.', extensions: { status: 404 } });
  });

  it('sends a test event from GET /health/services?service=webhook', async () => {
    const ok = await api<{ status: string; event_id: string; deliveries: { url: string; ok: boolean; status_code: number | null }[] }>(gateway.url, 'GET', '/health/services?service=webhook');
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('success');
    expect(ok.body.deliveries.map((d) => [d.url, d.ok, d.status_code])).toEqual([
      [good.url, true, 200],
      [bad.url, true, 200],
    ]);
    const test = good.received.find((e) => e.id === ok.body.event_id)!;
    expect(test.payload).toMatchObject({ event: 'webhook_test', event_group: 'proxy', spend: 0 });

    bad.mode = 'fail';
    const failing = await api<{ status: string; deliveries: { ok: boolean; status_code: number | null; error: string }[] }>(gateway.url, 'GET', '/health/services?service=webhook');
    expect(failing.status).toBe(503);
    expect(failing.body.status).toBe('failure');
    expect(failing.body.deliveries[1]).toMatchObject({ ok: false, status_code: 500, error: 'receiver answered HTTP 500' });

    const unknown = await api<{ error: { message: string; param: string } }>(gateway.url, 'GET', '/health/services?service=slack');
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ param: 'service', message: expect.stringMatching(/service must be one of: webhook/) });
    expect((await api(gateway.url, 'GET', '/health/services')).status).toBe(400);
    const key = await api<{ key: string }>(gateway.url, 'POST', '/key/generate', {});
    expect((await api(gateway.url, 'GET', '/health/services?service=webhook', undefined, key.body.key)).status).toBe(401);
  });
});

describe('alerting settings are checked at start-up', () => {
  const cases: [string, Record<string, unknown>, Record<string, string>, RegExp][] = [
    ['a threshold outside (0, 1)', { budget_alert_thresholds: [0.85, 1.5] }, { WEBHOOK_URL: 'http://127.0.0.1:9/hook' }, /general_settings\.alerting_args\.budget_alert_thresholds\[1\]: "1\.5" is not a fraction/],
    ['thresholds that are not a list', { budget_alert_thresholds: 0.9 }, { WEBHOOK_URL: 'http://127.0.0.1:9/hook' }, /budget_alert_thresholds: expected a list/],
    ['a negative timeout', { webhook_timeout_ms: -1 }, { WEBHOOK_URL: 'http://127.0.0.1:9/hook' }, /general_settings\.alerting_args\.webhook_timeout_ms/],
    ['a non-boolean switch', { send_spend_tracked: 'no' }, { WEBHOOK_URL: 'http://127.0.0.1:9/hook' }, /general_settings\.alerting_args\.send_spend_tracked/],
    ['webhook alerting without WEBHOOK_URL', {}, {}, /alerting: includes "webhook", but WEBHOOK_URL is not set/],
    ['a WEBHOOK_URL that is not http(s)', {}, { WEBHOOK_URL: 'ftp://example.com/hook' }, /WEBHOOK_URL: "ftp:\/\/example\.com\/hook" is not an http\(s\) URL/],
  ];
  it.each(cases)('refuses %s, naming the key', async (_name, args, env, message) => {
    await expect(startTestGateway({ yaml: webhookYaml(args), env })).rejects.toThrow(message);
  });
});
