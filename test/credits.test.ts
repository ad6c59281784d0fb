/**
 * Prepaid credits on one gateway (PostgreSQL store, Redis counters): grants idempotent by
 * reference, bad input named, a prepaid customer refused at zero with the budget refusal's
 * mechanism (402, never retried by the OpenAI SDK), the balance header, grants consumed
 * earliest-expiring first and an expired remainder not spendable, credits and a budget
 * together (the tighter wins, both ways), webhooks fired once per grant period, voids,
 * statements, /customer/info and the GraphQL mirrors — every number from the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { api, graphql, MASTER_KEY, startTestGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { WebhookReceiver } from './support/webhook-receiver';
import { FAST_RETRIES, webhookYaml } from './support/webhooks';
import { dollarsToPico } from '../src/shared/money';

interface Credits {
  end_user_id: string;
  prepaid: boolean;
  granted: number;
  consumed: number;
  balance: number;
  balance_exact: string;
  consumed_exact: string;
  grants: { reference: string; amount: number; consumed: number; remaining: number; status: string; kind: string; expires_at: string | null }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('prepaid credits', () => {
  const prefix = freshRedisPrefix();
  const receiver = new WebhookReceiver();
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let base: string;
  let client: OpenAI;

  /** One chat request of `user`: its charge and credits header, or the refusal. */
  async function chat(user: string, maxTokens = 20): Promise<{ charge: bigint; remaining: string | null } | { status: number; message: string }> {
    try {
      const { response } = await client.chat.completions
        .create({ model: 'mistral', user, max_tokens: maxTokens, messages: [{ role: 'user', content: 'tell me a story about credits' }] })
        .withResponse();
      return { charge: dollarsToPico(response.headers.get('x-litellm-response-cost')!), remaining: response.headers.get('x-tollgate-credits-remaining') };
    } catch (error) {
      const e = error as { status?: number; message?: string };
      if (!e.status) throw error;
      return { status: e.status, message: e.message ?? '' };
    }
  }

  async function credits(user: string): Promise<Credits> {
    const result = await api<Credits>(base, 'GET', `/customer/credits?end_user_id=${user}`);
    expect(result.status).toBe(200);
    return result.body;
  }

  async function ledgerCredits(user: string): Promise<{ charges: bigint; credits: bigint; rows: number }> {
    await gateway.ledger.flush();
    const [row] = await queryDatabase<{ charges: string; credits: string; rows: string }>(
      database.url,
      `select coalesce(sum(charge_pico), 0)::text as charges, coalesce(sum(credit_pico), 0)::text as credits, count(*)::text as rows from spend_ledger where customer_id = $1`,
      [user],
    );
    return { charges: BigInt(row!.charges), credits: BigInt(row!.credits), rows: Number(row!.rows) };
  }

  beforeAll(async () => {
    await receiver.start();
    database = await createTestDatabase();
    const yaml = webhookYaml({ ...FAST_RETRIES, send_spend_tracked: false }).replace('tollgate:\n', 'tollgate:\n  credits_low_threshold: 0.5\n');
    gateway = await startTestGateway({ yaml, databaseUrl: database.url, env: { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix, WEBHOOK_URL: receiver.url } });
    base = gateway.url;
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: MASTER_KEY, timeout: 30_000 }); // the SDK's default retries (2)
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'prepaid-130', price_multiplier: 1.3, prepaid: true })).status).toBe(200);
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    await receiver.stop();
    await deleteRedisKeys(prefix);
  });

  it('grants once per reference, refuses the same reference with another amount (409), and names bad fields', async () => {
    expect((await api(base, 'POST', '/customer/new', { user_id: 'ida', budget_id: 'prepaid-130' })).status).toBe(200);
    const first = await api<Credits & { created: boolean }>(base, 'POST', '/customer/credits/grant', { end_user_id: 'ida', amount: 5, reference: 'inv-1' });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ created: true, prepaid: true, granted: 5, balance: 5 });
    const again = await api<Credits & { created: boolean }>(base, 'POST', '/customer/credits/grant', { end_user_id: 'ida', amount: '5.00', reference: 'inv-1' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, granted: 5, balance: 5 });
    expect(again.body.grants).toHaveLength(1);
    const conflict = await api<{ error: { message: string; param: string } }>(base, 'POST', '/customer/credits/grant', { end_user_id: 'ida', amount: 6, reference: 'inv-1' });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.param).toBe('reference');
    expect(conflict.body.error.message).toContain('"inv-1"');

    const bad: [Record<string, unknown>, string][] = [
      [{ end_user_id: 'ida', amount: -1, reference: 'r' }, 'amount'],
      [{ end_user_id: 'ida', amount: 0, reference: 'r' }, 'amount'],
      [{ end_user_id: 'ida', amount: 'NaN', reference: 'r' }, 'amount'],
      [{ end_user_id: 'ida', amount: 'ten', reference: 'r' }, 'amount'],
      [{ end_user_id: 'ida', reference: 'r' }, 'amount'],
      [{ end_user_id: 'ida', amount: 1 }, 'reference'],
      [{ end_user_id: 'ida', amount: 1, reference: '' }, 'reference'],
      [{ end_user_id: 'ida', amount: 1, reference: 'r', expires_at: 'next tuesday' }, 'expires_at'],
      [{ end_user_id: 'ida', amount: 1, reference: 'r', expires_at: '2001-01-01T00:00:00Z' }, 'expires_at'],
      [{ end_user_id: 'ida', amount: 1, reference: 'r', kind: 'free' }, 'kind'],
      [{ end_user_id: 'nobody-here', amount: 1, reference: 'r' }, 'end_user_id'],
      [{ amount: 1, reference: 'r' }, 'end_user_id'],
    ];
    for (const [body, field] of bad) {
      const result = await api<{ error: { param: string; message: string } }>(base, 'POST', '/customer/credits/grant', body);
      expect(result.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(result.status, JSON.stringify(body)).toBeLessThan(500);
      expect(result.body.error.param, JSON.stringify(body)).toBe(field);
    }
    expect((await api(base, 'POST', '/customer/credits/void', { end_user_id: 'ida', reference: 'no-such' })).status).toBe(404);
    expect((await api(base, 'GET', '/customer/credits?end_user_id=nobody-here')).status).toBe(404);
    // GraphQL mirrors answer the same way.
    const graph = await graphql<{ grantCredits: { created: boolean; credits: { balance: number } } }>(
      base,
      'mutation { grantCredits(customerId: "ida", amount: 5, reference: "inv-1") { created credits { balance } } }',
    );
    expect(graph.data?.grantCredits).toEqual({ created: false, credits: { balance: 5 } });
    const graphConflict = await graphql(base, 'mutation { grantCredits(customerId: "ida", amount: 7, reference: "inv-1") { created } }');
    expect(graphConflict.errors?.[0]?.message).toContain('"inv-1"');
    const graphBad = await graphql(base, 'mutation { grantCredits(customerId: "ida", amount: -2, reference: "x") { created } }');
    expect(graphBad.errors?.[0]?.extensions).toMatchObject({ param: 'amount' });
    const audit = await queryDatabase<{ action: string }>(database.url, `select action from customer_audit where customer_id = 'ida' and action like 'credits%'`);
    expect(audit.map((row) => row.action)).toEqual(['credits_granted']);
  });

  it('admits a prepaid customer while its balance lasts, then refuses with 402 (no SDK retry), balance in every header and equal to the ledger', async () => {
    expect((await api(base, 'POST', '/customer/new', { user_id: 'jon', budget_id: 'prepaid-130' })).status).toBe(200);
    // Before any grant: nothing to spend.
    const none = await chat('jon');
    expect(none).toMatchObject({ status: 402 });
    expect((none as { message: string }).message).toContain('credits exhausted: balance $0 remaining of $0 granted');
    const amount = '0.0003';
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'jon', amount, reference: 'jon-1', kind: 'promotional' })).status).toBe(201);
    const served: bigint[] = [];
    let refusal: { status: number; message: string } | null = null;
    const before = receiver.received.length;
    for (let i = 0; i < 200 && !refusal; i++) {
      const result = await chat('jon');
      if ('status' in result) refusal = result;
      else {
        served.push(result.charge);
        const ledger = await ledgerCredits('jon');
        // The header is the balance left after this request (the ledger agrees).
        expect(dollarsToPico(result.remaining!)).toBe(dollarsToPico(amount) - ledger.credits > 0n ? dollarsToPico(amount) - ledger.credits : 0n);
      }
    }
    expect(refusal?.status).toBe(402);
    expect(refusal!.message).toMatch(/credits exhausted: balance \$0 remaining of \$0\.0003 granted/);
    expect(served.length).toBeGreaterThan(3);
    const ledger = await ledgerCredits('jon');
    expect(ledger.rows).toBe(served.length); // the refused request was neither served nor retried
    expect(ledger.credits).toBe(served.reduce((sum, c) => sum + c, 0n));
    expect(ledger.credits).toBe(ledger.charges);
    // At most one request's overshoot.
    const max = served.reduce((m, c) => (c > m ? c : m), 0n);
    expect(ledger.credits).toBeGreaterThanOrEqual(dollarsToPico(amount));
    expect(ledger.credits - dollarsToPico(amount)).toBeLessThan(max);
    const balance = await credits('jon');
    expect(dollarsToPico(balance.consumed_exact)).toBe(ledger.credits);
    expect(dollarsToPico(balance.balance_exact)).toBe(dollarsToPico(amount) - ledger.credits);
    expect(balance.grants[0]).toMatchObject({ reference: 'jon-1', kind: 'promotional', status: 'exhausted' });
    // /customer/info and GraphQL show the same balance.
    const info = await api<{ credits: { balance: number; consumed: number }; prepaid?: boolean }>(base, 'GET', '/customer/info?end_user_id=jon');
    expect(info.body.credits).toMatchObject({ balance: balance.balance, consumed: balance.consumed });
    const graph = await graphql<{ customer: { prepaid: boolean; credits: { balanceExact: string } } }>(base, '{ customer(id: "jon") { prepaid credits { balanceExact } } }');
    expect(graph.data?.customer).toEqual({ prepaid: true, credits: { balanceExact: balance.balance_exact } });
    // The refusal log names the reason (written off the request path, once a second).
    for (let i = 0; i < 50; i++) {
      const rows = await queryDatabase<{ reason: string; limit_type: string }>(database.url, `select reason, limit_type from refused_requests where customer_id = 'jon'`);
      if (rows.length) {
        expect(rows[0]).toEqual({ reason: 'credits_exhausted', limit_type: 'credits' });
        break;
      }
      if (i === 49) throw new Error('no refusal recorded');
      await sleep(100);
    }
    // credits_low and credits_exhausted: once each for this grant period.
    await receiver.waitFor(() => receiver.events((p) => p.customer_id === 'jon' && p.event === 'credits_exhausted').length === 1, 'credits_exhausted');
    for (let i = 0; i < 3; i++) expect(await chat('jon')).toMatchObject({ status: 402 });
    // Five refusals of jon so far (one before the grant, one at zero, three more): each counted
    // once, so the SDK (2 retries by default) retried none of them.
    const refusedCount = async () => Number((await queryDatabase<{ n: string }>(database.url, `select coalesce(sum(count), 0)::text as n from refused_requests where customer_id = 'jon'`))[0]!.n);
    for (let i = 0; i < 50 && (await refusedCount()) < 5; i++) await sleep(100);
    await sleep(1_200);
    expect(await refusedCount()).toBe(5);
    const jonEvents = receiver.received.slice(before).filter((e) => e.payload.customer_id === 'jon');
    expect(jonEvents.map((e) => e.payload.event).sort()).toEqual(['credits_exhausted', 'credits_low']);
    const exhausted = jonEvents.find((e) => e.payload.event === 'credits_exhausted')!.payload;
    expect(exhausted).toMatchObject({ credits_granted: 0.0003 });
    expect(exhausted.credits_remaining as number).toBeLessThanOrEqual(0);
    // A new grant is a new period: admitted again, and the alerts may fire again.
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'jon', amount: 1, reference: 'jon-2' })).status).toBe(201);
    const after = await chat('jon');
    expect('charge' in after).toBe(true);
  });

  it('consumes the grant that expires first, and an expired remainder is not spendable', async () => {
    expect((await api(base, 'POST', '/customer/new', { user_id: 'kim', budget_id: 'prepaid-130' })).status).toBe(200);
    const expiresAt = new Date(Date.now() + 4_000).toISOString();
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'kim', amount: 1, reference: 'kim-forever' })).status).toBe(201);
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'kim', amount: 0.5, reference: 'kim-soon', expires_at: expiresAt })).status).toBe(201);
    let spent = 0n;
    for (let i = 0; i < 3; i++) {
      const result = await chat('kim');
      if (!('charge' in result)) throw new Error(JSON.stringify(result));
      spent += result.charge;
    }
    const during = await credits('kim');
    const soon = during.grants.find((g) => g.reference === 'kim-soon')!;
    const forever = during.grants.find((g) => g.reference === 'kim-forever')!;
    expect(during.grants[0]!.reference).toBe('kim-soon'); // listed in consumption order
    expect(dollarsToPico(soon.consumed)).toBe(spent);
    expect(forever.consumed).toBe(0);
    expect(dollarsToPico(during.balance_exact)).toBe(dollarsToPico('1.5') - spent);
    await sleep(Math.max(0, new Date(expiresAt).getTime() - Date.now()) + 300);
    const after = await credits('kim');
    // The expiring grant's unconsumed remainder left the balance; what it paid for stays consumed.
    expect(after.grants.find((g) => g.reference === 'kim-soon')).toMatchObject({ status: 'expired', remaining: 0 });
    expect(dollarsToPico(after.balance_exact)).toBe(dollarsToPico('1'));
    expect(dollarsToPico(String(after.granted))).toBe(dollarsToPico('1') + spent);
    // A customer whose only grant expired cannot spend its remainder.
    expect((await api(base, 'POST', '/customer/new', { user_id: 'lea', prepaid: true })).status).toBe(200);
    const leaExpiry = new Date(Date.now() + 1_500).toISOString();
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'lea', amount: 1, reference: 'lea-1', expires_at: leaExpiry })).status).toBe(201);
    expect('charge' in (await chat('lea'))).toBe(true);
    await sleep(new Date(leaExpiry).getTime() - Date.now() + 100);
    const refused = await chat('lea');
    expect(refused).toMatchObject({ status: 402 });
    const leaLedger = await ledgerCredits('lea');
    expect(leaLedger.rows).toBe(1);
    // After the settle delay the process recomputes: still refused, and the expired grant counts what it paid for.
    await sleep(2_500);
    expect(await chat('lea')).toMatchObject({ status: 402 });
    const lea = await credits('lea');
    expect(dollarsToPico(lea.consumed_exact)).toBe(leaLedger.credits);
    expect(dollarsToPico(lea.balance_exact)).toBe(0n);
  });

  it('applies credits and a monthly budget together: the tighter wins, both ways', async () => {
    // A budget tighter than the credits.
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'prepaid-capped', prepaid: true, price_multiplier: 1.3, max_budget: 0.0002, budget_duration: '30d' })).status).toBe(200);
    expect((await api(base, 'POST', '/customer/new', { user_id: 'max', budget_id: 'prepaid-capped' })).status).toBe(200);
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'max', amount: 10, reference: 'max-1' })).status).toBe(201);
    let refusal: { status: number; message: string } | null = null;
    for (let i = 0; i < 100 && !refusal; i++) {
      const result = await chat('max');
      if ('status' in result) refusal = result;
    }
    expect(refusal?.message).toContain('Budget has been exceeded');
    const maxCredits = await credits('max');
    expect(maxCredits.balance).toBeGreaterThan(9.99);
    // Credits tighter than the budget.
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'roomy', prepaid: true, max_budget: 100, budget_duration: '30d' })).status).toBe(200);
    expect((await api(base, 'POST', '/customer/new', { user_id: 'ned', budget_id: 'roomy' })).status).toBe(200);
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'ned', amount: 0.0002, reference: 'ned-1' })).status).toBe(201);
    refusal = null;
    for (let i = 0; i < 100 && !refusal; i++) {
      const result = await chat('ned');
      if ('status' in result) refusal = result;
    }
    expect(refusal?.message).toContain('credits exhausted');
    const ned = await api<{ spend: number }>(base, 'GET', '/customer/info?end_user_id=ned');
    expect(ned.body.spend).toBeLessThan(0.001);
  });

  it('voids a grant: what it paid for stays consumed, its remainder leaves the balance; statements show credits used', async () => {
    expect((await api(base, 'POST', '/customer/new', { user_id: 'ola', budget_id: 'prepaid-130' })).status).toBe(200);
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'ola', amount: 2, reference: 'ola-1' })).status).toBe(201);
    let spent = 0n;
    for (let i = 0; i < 2; i++) spent += (await chat('ola') as { charge: bigint }).charge;
    const voided = await api<Credits & { voided: boolean }>(base, 'POST', '/customer/credits/void', { end_user_id: 'ola', reference: 'ola-1' });
    expect(voided.status).toBe(200);
    expect(voided.body.voided).toBe(true);
    expect(dollarsToPico(voided.body.balance_exact)).toBe(0n);
    expect(dollarsToPico(voided.body.consumed_exact)).toBe(spent);
    expect(voided.body.grants[0]).toMatchObject({ status: 'voided', remaining: 0 });
    expect(dollarsToPico(String(voided.body.grants[0]!.consumed))).toBe(spent);
    const again = await api<{ voided: boolean }>(base, 'POST', '/customer/credits/void', { end_user_id: 'ola', reference: 'ola-1' });
    expect(again.body.voided).toBe(false);
    expect(await chat('ola')).toMatchObject({ status: 402 });
    const graph = await graphql<{ voidCredits: { voided: boolean } }>(base, 'mutation { voidCredits(customerId: "ola", reference: "ola-1") { voided } }');
    expect(graph.data?.voidCredits.voided).toBe(false);
    const audit = await queryDatabase<{ action: string }>(database.url, `select action from customer_audit where customer_id = 'ola' and action like 'credits%' order by created_at`);
    expect(audit.map((row) => row.action)).toEqual(['credits_granted', 'credits_voided']);

    const period = new Date().toISOString().slice(0, 7);
    const statement = await api<{ totals: { charge: string; credits_used: string }; lines: { credits_used: string }[] }>(base, 'GET', `/customer/statement?end_user_id=ola&period=${period}`);
    expect(statement.status).toBe(200);
    expect(dollarsToPico(statement.body.totals.credits_used)).toBe(spent);
    expect(dollarsToPico(statement.body.totals.charge)).toBe(spent);
    expect(statement.body.lines.reduce((sum, line) => sum + dollarsToPico(line.credits_used), 0n)).toBe(spent);
    // A deleted customer's grants go with it: created again, it starts without credits.
    expect((await api(base, 'POST', '/customer/credits/grant', { end_user_id: 'ola', amount: 3, reference: 'ola-2' })).status).toBe(201);
    expect((await api(base, 'POST', '/customer/delete', { user_ids: ['ola'] })).status).toBe(200);
    expect((await api(base, 'POST', '/customer/new', { user_id: 'ola', prepaid: true })).status).toBe(200);
    expect((await credits('ola')).grants).toEqual([]);
    expect(await chat('ola')).toMatchObject({ status: 402 });
  });
});
