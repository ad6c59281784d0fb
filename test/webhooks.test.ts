/**
 * Webhooks and budget alerts, black-box: Tollgate over HTTP (openai SDK, fetch, GraphQL) with
 * a real HTTP receiver. Payloads exactly as the seed; thresholds once per period and again
 * after a reset; signatures; receivers that are down, failing or slow; several URLs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import type OpenAI from 'openai';
import { api, graphql, openaiClient, startTestGateway } from './support/gateway';
import { chat, FAST_RETRIES, SEED_KEYS, spendOf, waitForNoPendingDeliveries, webhookYaml } from './support/webhooks';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { WebhookReceiver, type ReceivedEvent } from './support/webhook-receiver';
import { dollarsToPico, picoToDecimalString } from '../src/shared/money';
import type { BudgetEvent } from '../src/ledger/types';

const BUDGET_EVENT_KEYS = [...SEED_KEYS, 'soft_budget', 'threshold', 'budget_id', 'period_start'].sort();
const SECRET = 'test-webhook-secret';

const pico = (dollars: unknown) => dollarsToPico(dollars as number);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const alertsOf = (receiver: WebhookReceiver, customer: string) => receiver.events((p) => p.customer_id === customer && p.event !== 'spend_tracked');
const summary = (events: ReceivedEvent[]) =>
  events.map((e) => `${e.payload.event}:${e.payload.threshold ?? '-'}:${picoToDecimalString(pico(e.payload.spend))}`).sort();

describe.each(['pglite', 'postgresql'] as const)('webhooks on %s', (store) => {
  let receiver: WebhookReceiver;
  let database: TestDatabase | null = null;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let client: OpenAI;
  let unit: bigint; // cost of one PROMPT request on mistral
  const budgetEvents: BudgetEvent[] = [];

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    if (store === 'postgresql') database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: webhookYaml(FAST_RETRIES), databaseUrl: database?.url, env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET } });
    gateway.budgetEvents.subscribe((event) => budgetEvents.push(event));
    client = openaiClient(`${gateway.url}/v1`);
    unit = spendOf(await chat(client, 'probe'));
  });

  afterAll(async () => {
    await gateway?.stop();
    await receiver?.stop();
    await database?.drop();
  });

  it('sends spend_tracked with exactly the seed payload, signed', async () => {
    const { response } = await client.chat.completions
      .create({ model: 'mistral', user: 'krrish12', messages: [{ role: 'user', content: 'hello there' }] })
      .withResponse();
    const cost = response.headers.get('x-litellm-response-cost')!;
    await receiver.waitFor(() => receiver.events((p) => p.customer_id === 'krrish12').length === 1, 'the spend_tracked event of krrish12');
    const [event] = receiver.events((p) => p.customer_id === 'krrish12');
    expect(Object.keys(event!.payload)).toEqual(SEED_KEYS);
    const spend = Number(cost);
    expect(event!.payload).toEqual({
      spend,
      max_budget: null,
      token: 'master', // the key's id, never a hash of it
      customer_id: 'krrish12',
      user_id: null,
      team_id: null,
      user_email: null,
      key_alias: null,
      projected_exceeded_date: null,
      projected_spend: null,
      event: 'spend_tracked',
      event_group: 'customer',
      event_message: `Customer spend tracked. Customer=krrish12, spend=${spend}`,
    });
    expect(pico(event!.payload.spend)).toBe(dollarsToPico(cost));

    // Standard Webhooks headers, verified independently of Tollgate's code.
    expect(event!.id).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(Math.abs(Number(event!.timestamp) - Date.now() / 1000)).toBeLessThan(60);
    const expected = createHmac('sha256', SECRET).update(`${event!.id}.${event!.timestamp}.${event!.body}`).digest('base64');
    expect(event!.signature).toBe(`v1,${expected}`);
    expect(event!.headers['content-type']).toBe('application/json');
  });

  it('carries the key alias and key id of a virtual key, the max_budget in force, and nothing for requests without a customer', async () => {
    const key = await api<{ key: string; token: string }>(gateway.url, 'POST', '/key/generate', { key_alias: 'mobile-app' });
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'with-budget', max_budget: 100 });
    const before = receiver.received.length;
    await openaiClient(`${gateway.url}/v1`, key.body.key).chat.completions.create({ model: 'mistral', messages: [{ role: 'user', content: 'no customer here' }] });
    spendOf(await chat(openaiClient(`${gateway.url}/v1`, key.body.key), 'with-budget'));
    await receiver.waitFor(() => receiver.events((p) => p.customer_id === 'with-budget').length === 1, 'the with-budget event');
    const [event] = receiver.events((p) => p.customer_id === 'with-budget');
    expect(event!.payload).toMatchObject({ token: key.body.token, key_alias: 'mobile-app', max_budget: 100, event: 'spend_tracked' });
    await sleep(300);
    expect(receiver.received.length).toBe(before + 1); // the request without a customer sent nothing
  });

  it('fires soft_budget_crossed, each threshold and budget_crossed once per period, several from one request', async () => {
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'tiered', max_budget: picoToDecimalString(10n * unit), soft_budget: picoToDecimalString(5n * unit) });
    for (let i = 1; i <= 10; i++) expect(await chat(client, 'tiered')).toBe(unit);
    expect(await chat(client, 'tiered')).toBe('refused');
    await receiver.waitFor(() => alertsOf(receiver, 'tiered').length >= 4 && receiver.events((p) => p.customer_id === 'tiered').length >= 14, 'the alerts of tiered');
    await sleep(300); // nothing more arrives
    const alerts = alertsOf(receiver, 'tiered');
    const dollars = (n: bigint) => picoToDecimalString(n * unit);
    // Soft at 5 of 10 requests; 0.85 at 9 (90 %); 0.95 and the budget together at the 10th.
    expect(summary(alerts)).toEqual([`budget_crossed:1:${dollars(10n)}`, `soft_budget_crossed:-:${dollars(5n)}`, `threshold_crossed:0.85:${dollars(9n)}`, `threshold_crossed:0.95:${dollars(10n)}`]);
    expect(new Set(alerts.map((e) => e.id)).size).toBe(4);
    const crossed = alerts.find((e) => e.payload.event === 'budget_crossed')!;
    expect(Object.keys(crossed.payload).sort()).toEqual(BUDGET_EVENT_KEYS);
    expect(crossed.payload).toMatchObject({
      max_budget: Number(dollars(10n)),
      soft_budget: Number(dollars(5n)),
      threshold: 1,
      token: 'master', // the key's id, never a hash of it
      event_group: 'customer',
      event_message: `Customer budget crossed. Customer=tiered, spend=${Number(dollars(10n))}, max_budget=${Number(dollars(10n))}`,
      period_start: new Date(0).toISOString(), // no budget_duration: one lifetime period
    });
    expect(alerts.find((e) => e.payload.event === 'threshold_crossed' && e.payload.threshold === 0.85)!.payload.event_message).toMatch(/threshold crossed: 85% of max_budget/);

    // The same alerts went out on the BudgetEventBus (GraphQL subscriptions), with the same ids.
    const published = budgetEvents.filter((e) => e.customerId === 'tiered');
    expect(published.map((e) => e.eventId).sort()).toEqual(alerts.map((e) => e.id).sort());
    expect(published.find((e) => e.type === 'threshold_crossed' && e.threshold === 0.85)!.spendPico).toBe(9n * unit);

    // One request jumping over every level fires each of them.
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'jumper', max_budget: picoToDecimalString(unit), soft_budget: picoToDecimalString(unit / 2n) });
    expect(await chat(client, 'jumper')).toBe(unit);
    await receiver.waitFor(() => alertsOf(receiver, 'jumper').length >= 4, 'the alerts of jumper');
    expect(summary(alertsOf(receiver, 'jumper'))).toEqual(['budget_crossed', 'soft_budget_crossed', 'threshold_crossed', 'threshold_crossed'].map((type, i) => `${type}:${['1', '-', '0.85', '0.95'][i]}:${picoToDecimalString(unit)}`));
  });

  it('fires the thresholds again after the budget period resets', async () => {
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'periodic', max_budget: picoToDecimalString(unit), budget_duration: '2s' });
    expect(await chat(client, 'periodic')).toBe(unit);
    // Refused until the period rolls over, then admitted again from zero.
    let second: bigint | 'refused' = 'refused';
    for (let i = 0; i < 40 && second === 'refused'; i++) {
      await sleep(100);
      second = await chat(client, 'periodic');
    }
    expect(second).toBe(unit);
    await receiver.waitFor(() => alertsOf(receiver, 'periodic').length >= 6, 'two periods of alerts of periodic');
    await sleep(300);
    const alerts = alertsOf(receiver, 'periodic');
    expect(alerts).toHaveLength(6);
    const periods = [...new Set(alerts.map((e) => e.payload.period_start as string))].sort();
    expect(periods).toHaveLength(2);
    const gap = Date.parse(periods[1]!) - Date.parse(periods[0]!);
    expect(gap > 0 && gap % 2000 === 0).toBe(true); // the next aligned 2 s period (or a later one on a stalled machine)
    for (const period of periods) {
      expect(summary(alerts.filter((e) => e.payload.period_start === period))).toEqual([`budget_crossed:1:${picoToDecimalString(unit)}`, `threshold_crossed:0.85:${picoToDecimalString(unit)}`, `threshold_crossed:0.95:${picoToDecimalString(unit)}`]);
    }
  });

  it('lists deliveries over GraphQL with the payload sent', async () => {
    await waitForNoPendingDeliveries(gateway.url);
    const result = await graphql<{ webhookDeliveries: { nodes: { eventId: string; event: string; status: string; attempts: number; payload: Record<string, unknown> }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } }>(
      gateway.url,
      `{ webhookDeliveries(status: delivered, first: 2) { nodes { eventId event status attempts payload } pageInfo { hasNextPage endCursor } } }`,
    );
    expect(result.errors).toBeUndefined();
    const page = result.data!.webhookDeliveries;
    expect(page.nodes).toHaveLength(2);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const ids = new Set(receiver.received.map((e) => e.id));
    for (const node of page.nodes) {
      expect(ids.has(node.eventId)).toBe(true);
      expect(node.status).toBe('delivered');
      expect(node.attempts).toBe(1);
    }
    const next = await graphql<{ webhookDeliveries: { nodes: { eventId: string }[] } }>(gateway.url, `query($after: String) { webhookDeliveries(status: delivered, first: 1000, after: $after) { nodes { eventId } } }`, {
      after: page.pageInfo.endCursor,
    });
    expect(next.data!.webhookDeliveries.nodes.length + 2).toBe(receiver.received.length);
    const failed = await graphql<{ webhookDeliveries: { nodes: unknown[] } }>(gateway.url, `{ webhookDeliveries { nodes { eventId } } }`);
    expect(failed.data!.webhookDeliveries.nodes).toEqual([]);
    const bad = await graphql(gateway.url, `{ webhookDeliveries(after: "nonsense") { nodes { eventId } } }`);
    expect(bad.errors![0]!.message).toMatch(/after is not a cursor/);
  });
});
