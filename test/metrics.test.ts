/**
 * `GET /metrics` as Prometheus scrapes it: admin key required, per-route/model/status request
 * counts (refusals and bad requests included), metered spend and tokens that match what the
 * responses said they cost, and the gauges read at scrape time (live subscriptions).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, MASTER_KEY, openaiClient, startTestGateway } from './support/gateway';
import { collect, liveClient } from './support/live';
import { scrape, subscriptionsOpen, total } from './support/metrics';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

describe('metrics', () => {
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('needs an admin key', async () => {
    const anonymous = await fetch(`${gateway.url}/metrics`);
    expect(anonymous.status).toBe(401);
    const wrong = await fetch(`${gateway.url}/metrics`, { headers: { authorization: 'Bearer sk-wrong' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { message: expect.stringContaining('admin key') } });
  });

  it('counts requests by model and status, and the spend and tokens it metered', async () => {
    const before = await scrape(gateway.url);
    const openai = openaiClient(gateway.url);
    let charged = 0n;
    let tokens = 0;
    for (let i = 0; i < 3; i++) {
      const { data, response } = await openai.chat.completions.create({ model: 'gpt-3.5-turbo', user: 'metrics-customer', messages: [{ role: 'user', content: `hello ${i}` }] }).withResponse();
      charged += dollarsToPico(response.headers.get('x-litellm-response-cost')!);
      tokens += data.usage!.total_tokens;
    }
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'metrics-broke', max_budget: 0 })).status).toBe(200);
    await expect(openai.chat.completions.create({ model: 'mistral', user: 'metrics-broke', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 402 });
    await expect(openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 });

    const after = await scrape(gateway.url);
    const delta = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
    expect(delta('tollgate_requests_total', { route: 'chat', model: 'gpt-3.5-turbo', status: '200' })).toBe(3);
    expect(delta('tollgate_requests_total', { route: 'chat', model: 'mistral', status: '402' })).toBe(1);
    expect(delta('tollgate_requests_total', { route: 'chat', model: '', status: '404' })).toBe(1); // unknown models are not labels
    expect(delta('tollgate_request_duration_seconds_count', { route: 'chat', model: 'gpt-3.5-turbo' })).toBe(3);
    expect(delta('tollgate_spend_usd_total', { model: 'gpt-3.5-turbo' })).toBeCloseTo(picoToDollars(charged), 12);
    expect(delta('tollgate_spend_usd_total', { model: 'mistral' })).toBe(0);
    expect(delta('tollgate_tokens_total', { model: 'gpt-3.5-turbo' })).toBe(tokens);
    expect(total(after, 'tollgate_requests_in_flight')).toBe(0);
    expect(after.find((sample) => sample.name === 'tollgate_requests_total')?.labels.role).toBe('all');
    expect(total(after, 'tollgate_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('reports the live subscriptions open now', async () => {
    expect(total(await scrape(gateway.url), 'tollgate_live_subscriptions')).toBe(0);
    const client = liveClient(gateway.url, MASTER_KEY);
    const updates = collect(client, 'subscription { spendUpdated { customerId } }');
    const alerts = collect(client, 'subscription { budgetEvent { customerId } }');
    await subscriptionsOpen(gateway.url, 2);
    updates.dispose();
    alerts.dispose();
    await expect.poll(async () => total(await scrape(gateway.url), 'tollgate_live_subscriptions')).toBe(0);
    await client.dispose();
  });
});
