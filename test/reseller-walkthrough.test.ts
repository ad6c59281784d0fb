/**
 * README's "Reselling: prices, credits, bound keys, Stripe", step by step, against a real
 * `tollgate start` process on examples/reseller.yaml (embedded store, as `npm start` runs),
 * its Stripe exporter pointed at a local receiver that checks the meter-event wire format.
 * Every number the README shows is checked here: $0.3575 a request, $9.6425 left after the
 * first, 28 served and the 29th refused with 402, $10.01 consumed and charged, $7.70 cost,
 * $2.31 margin, 28 meter events summing to 10010000000000 pico-dollars. Needs `npm run build`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, ROOT, spawnGateway, type SpawnedGateway } from './support/gateway';
import { BillingReceiver } from './support/billing-receiver';
import { dollarsToPico } from '../src/shared/money';

const STRIPE_KEY = 'sk_test_tollgate';
const HAIKU = { model: 'gpt-4o', max_tokens: 100, messages: [{ role: 'user', content: 'Write a haiku about tollgates' }] };

describe('README reselling walkthrough', () => {
  const receiver = new BillingReceiver(STRIPE_KEY);
  let gateway: SpawnedGateway;
  let base: string;

  beforeAll(async () => {
    await receiver.start();
    // The README's config, with the exporter's commented host/port/protocol pointed at the receiver.
    const yaml = readFileSync(join(ROOT, 'examples/reseller.yaml'), 'utf8')
      .replace('# host: 127.0.0.1  ', 'host: 127.0.0.1')
      .replace('# port: 12111', `port: ${receiver.port}`)
      .replace('# protocol: http', 'protocol: http');
    expect(yaml).toContain(`port: ${receiver.port}`);
    gateway = await spawnGateway({ yaml, dataDir: freshDataDir(), env: { STRIPE_API_KEY: STRIPE_KEY } });
    base = gateway.url;
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop();
    await receiver.stop();
  });

  it('sells $10 of credits at a 30% markup, serves the bound key until zero, and Stripe sees the same usage', async () => {
    // 1. The tier and the customer.
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'resale-30', price_multiplier: 1.3, prepaid: true })).status).toBe(200);
    expect((await api(base, 'POST', '/customer/new', { user_id: 'acme', alias: 'Acme Inc.', budget_id: 'resale-30', stripe_customer_id: 'cus_AcmeTest123' })).status).toBe(200);
    // 2. $10 of credits, granted once however often it is sent.
    const grant = await api<{ created: boolean; granted: number; consumed: number; balance: number }>(base, 'POST', '/customer/credits/grant', { end_user_id: 'acme', amount: 10, reference: 'invoice-0001' });
    expect(grant.status).toBe(201);
    expect(grant.body).toMatchObject({ created: true, granted: 10, consumed: 0, balance: 10 });
    expect((await api<{ created: boolean }>(base, 'POST', '/customer/credits/grant', { end_user_id: 'acme', amount: 10, reference: 'invoice-0001' })).body.created).toBe(false);
    // 3. A key bound to acme.
    const generated = await api<{ key: string }>(base, 'POST', '/key/generate', { key_alias: 'acme-app', customer_id: 'acme' });
    expect(generated.status).toBe(200);
    const key = generated.body.key;
    // 4. The app's first request.
    const call = () =>
      fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(HAIKU) });
    const first = await call();
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    expect(first.headers.get('x-litellm-response-cost')).toBe('0.3575');
    expect(first.headers.get('x-tollgate-credits-remaining')).toBe('9.6425');
    const requestIds = [first.headers.get('x-request-id')!];
    const me = await api<{ credits: unknown }>(base, 'GET', '/customer/me', undefined, key);
    expect(me.body.credits).toEqual({ granted: 10, consumed: 0.3575, balance: 9.6425 });
    // 5. Until it is stopped: the loop's 28th request is refused.
    let refusedAt = 0;
    let refusal: { error: { message: string; type: string } } | null = null;
    for (let i = 1; i <= 40; i++) {
      const response = await call();
      if (response.status !== 200) {
        expect(response.status).toBe(402);
        expect(response.headers.get('x-should-retry')).toBe('false');
        refusal = (await response.json()) as typeof refusal;
        refusedAt = i;
        break;
      }
      await response.arrayBuffer();
      requestIds.push(response.headers.get('x-request-id')!);
    }
    expect(refusedAt).toBe(28);
    expect(refusal!.error.type).toBe('credits_exhausted');
    expect(refusal!.error.message).toContain('credits exhausted: balance $0 remaining of $10 granted.');
    // 6. Every number agrees.
    const credits = await api<{ granted: number; consumed: number; balance: number; grants: { reference: string; consumed: number; status: string }[] }>(base, 'GET', '/customer/credits?end_user_id=acme');
    expect(credits.body).toMatchObject({ granted: 10, consumed: 10.01, balance: -0.01 });
    expect(credits.body.grants[0]).toMatchObject({ reference: 'invoice-0001', consumed: 10, status: 'exhausted' });
    const period = new Date().toISOString().slice(0, 7);
    const statement = await api<{ totals: Record<string, unknown> }>(base, 'GET', `/customer/statement?end_user_id=acme&period=${period}`);
    expect(statement.body.totals).toMatchObject({ requests: 28, cost: '7.7', charge: '10.01', margin: '2.31', credits_used: '10.01' });
    await receiver.waitFor(() => receiver.meterEvents.length >= 28, '28 meter events');
    expect(receiver.malformed).toEqual([]);
    expect(receiver.meterEvents.map((event) => event.identifier).sort()).toEqual([...requestIds].sort());
    expect(receiver.meterEvents.every((event) => event.stripeCustomerId === 'cus_AcmeTest123' && event.eventName === 'llm_charge')).toBe(true);
    expect(receiver.meterEvents.reduce((sum, event) => sum + BigInt(event.value), 0n)).toBe(10_010_000_000_000n);
    expect(dollarsToPico('10.01')).toBe(10_010_000_000_000n);
    const exporters = await api<{ name: string; pending: number; failed: number }[]>(base, 'GET', '/exporters');
    expect(exporters.body).toMatchObject([{ name: 'stripe', pending: 0, failed: 0 }]);
    // A new grant pays the overshoot first and serves again.
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'acme', amount: 10, reference: 'invoice-0002' })).status).toBe(201);
    const again = await call();
    expect(again.status).toBe(200);
    expect(again.headers.get('x-tollgate-credits-remaining')).toBe('9.6325');
  });
});
