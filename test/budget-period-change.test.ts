/**
 * A tier's period changed so that it starts earlier (daily to monthly: today's midnight to the
 * 1st): the customers' spend since the new start counts at once, new spend adds to it, and the
 * cap of the new period holds. The same for a per-model budget (`model_max_budget`), and for
 * one added to a tier mid-period. A request in flight across the change counts in the new
 * period, in the counters and in the store alike, also when Redis answers its settlement after
 * the ledger has stored it, and when the period starts later (monthly to daily). Customers with
 * no spend since the new start have their counters moved at their next request. With in-process
 * counters and with Redis.
 */
import { describe, expect, it } from 'vitest';
import { gatewayWithCounters, type CounterGateway } from './support/counter-gateway';
import { api, MASTER_KEY, openaiClient } from './support/gateway';
import { ledgerRows } from './support/ledger';
import { queryDatabase } from './support/postgres';
import { chat as slowChat, gatewayBehindRedisLink } from './support/redis-link';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

/** The stored overall counter of `user` for the period that starts this month or today (UTC). */
async function storedSpend(g: CounterGateway, user: string, period: 'month' | 'day'): Promise<bigint[]> {
  const rows = await queryDatabase<{ spend: string }>(
    g.database.url,
    `select spend_pico::text as spend from spend_counters where customer_id = $1 and scope = '' and period_start = date_trunc('${period}', now() at time zone 'UTC') at time zone 'UTC'`,
    [user],
  );
  return rows.map((row) => BigInt(row.spend));
}

/**
 * Each of `user`'s ledger rows (there are `requests`) counts in its live counter and in the
 * stored counter of the period that starts this month or today: after a restart, read back from
 * the store, the spend is the same.
 */
async function expectAllCounted(g: CounterGateway, user: string, requests: number, period: 'month' | 'day'): Promise<void> {
  const rows = await ledgerRows(g.gateway, user);
  expect(rows).toHaveLength(requests);
  const charged = rows.reduce((sum, row) => sum + row.cost, 0n);
  expect(await g.spendOf(user)).toBe(charged);
  expect(await storedSpend(g, user, period)).toEqual([charged]);
  await g.restart();
  expect(await g.spendOf(user)).toBe(charged);
}

/** A stream of `user`'s from the mock upstream, held after two chunks while `whileHeld` runs (the budget change), then read to its end. */
async function streamHeldWhile(g: CounterGateway, user: string, whileHeld: () => Promise<void>): Promise<void> {
  g.upstream.behavior.pauseAfterChunks = 2;
  const stream = await openaiClient(`${g.gateway.url}/v1`).chat.completions.create({
    model: 'upstream-gpt',
    user,
    stream: true,
    messages: [{ role: 'user', content: 'a long answer, please' }],
  });
  let chunks = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content && ++chunks === 2) {
      await whileHeld();
      g.upstream.resume();
    }
  }
  g.upstream.behavior.pauseAfterChunks = undefined;
}

function chat(base: string, user: string, model = 'gpt-3.5-turbo') {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model, user, messages: [{ role: 'user', content: 'what time is it' }], max_tokens: 5 }),
    signal: AbortSignal.timeout(30_000),
  });
}

describe.each(['in-process', 'redis'] as const)('a tier whose period starts earlier, %s counters', (counters) => {
  const g = gatewayWithCounters(counters);

  it('counts the spend since the new start, adds new spend to it, and refuses at the cap', async () => {
    const probe = await chat(g.gateway.url, 'probe');
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    const spendOf = () => g.spendOf('grower');
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'daily-then-monthly', max_budget: Number(picoToDollars(4n * cost)), budget_duration: '1d' })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'grower', budget_id: 'daily-then-monthly' })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await chat(g.gateway.url, 'grower')).status).toBe(200);
    expect(await spendOf()).toBe(2n * cost);

    expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'daily-then-monthly', budget_duration: '1mo' })).status).toBe(200);
    // Today is inside this month: nothing of it is lost.
    expect(await spendOf()).toBe(2n * cost);
    expect((await chat(g.gateway.url, 'grower')).status).toBe(200);
    expect(await spendOf()).toBe(3n * cost);

    // Restarted, the customer's counter is read back from the store: the month's row, not the
    // later row of the retired day.
    await g.restart();
    expect(await spendOf()).toBe(3n * cost);
    expect((await chat(g.gateway.url, 'grower')).status).toBe(200);
    expect(await spendOf()).toBe(4n * cost);
    expect((await chat(g.gateway.url, 'grower')).status).toBe(402);
  });

  it('does the same for a per-model budget whose period starts earlier, and for one added mid-period', async () => {
    const probe = await chat(g.gateway.url, 'probe', 'mistral');
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    const cap = Number(picoToDollars(4n * cost));
    const modelBudget = (duration: string) => ({ model_max_budget: { mistral: { max_budget: cap, budget_duration: duration } } });
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'model-capped', max_budget: 100, ...modelBudget('1d') })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'model-later', max_budget: 100 })).status).toBe(200);
    for (const [user, budget] of [['per-model', 'model-capped'], ['added-later', 'model-later']]) {
      expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: user, budget_id: budget })).status).toBe(200);
      for (let i = 0; i < 2; i++) expect((await chat(g.gateway.url, user, 'mistral')).status).toBe(200);
    }

    expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'model-capped', ...modelBudget('1mo') })).status).toBe(200);
    // Added with spend already this month: that spend counts against it.
    expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'model-later', ...modelBudget('1mo') })).status).toBe(200);
    for (const user of ['per-model', 'added-later']) {
      for (let i = 0; i < 2; i++) expect((await chat(g.gateway.url, user, 'mistral')).status, user).toBe(200);
      const refused = await chat(g.gateway.url, user, 'mistral');
      expect(refused.status, user).toBe(402);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('model=mistral');
      expect((await chat(g.gateway.url, user)).status).toBe(200); // other models are not capped
    }
  });

  it('counts a request in flight across the change into the new period, and stores it there', async () => {
    g.upstream.reset();
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'changed-mid-request', max_budget: 100, budget_duration: '1d' })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'mid-flight', budget_id: 'changed-mid-request' })).status).toBe(200);
    const before = await chat(g.gateway.url, 'mid-flight', 'upstream-gpt');
    expect(before.status).toBe(200);

    // A stream admitted under the daily period, held open by the mock upstream.
    await streamHeldWhile(g, 'mid-flight', async () => {
      // Daily to monthly while it runs: today is inside this month.
      expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'changed-mid-request', budget_duration: '1mo' })).status).toBe(200);
    });
    // The month's stored counter has the stream's charge too: read back after a restart, the
    // customer's spend is still everything since the 1st.
    await expectAllCounted(g, 'mid-flight', 2, 'month');
  });

  // The change moves the counters of the customers with spend since the new start; these two
  // had none in the store, their counters live in the retired day all the same.
  it('moves the counter of a customer whose only request so far had failed when its next one comes, and keeps the cap', async () => {
    g.upstream.reset();
    const probe = await chat(g.gateway.url, 'probe-failed-first', 'upstream-gpt');
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'failed-then-monthly', max_budget: Number(picoToDollars(2n * cost)), budget_duration: '1d' })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'failed-first', budget_id: 'failed-then-monthly' })).status).toBe(200);
    g.upstream.behavior = { ...g.upstream.behavior, mode: 'error', status: 400 };
    expect((await chat(g.gateway.url, 'failed-first', 'upstream-gpt')).status).toBe(400); // its counter now lives in today's period, at zero
    g.upstream.reset();

    expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'failed-then-monthly', budget_duration: '1mo' })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await chat(g.gateway.url, 'failed-first', 'upstream-gpt')).status).toBe(200);
    expect(await g.spendOf('failed-first')).toBe(2n * cost);
    expect((await chat(g.gateway.url, 'failed-first', 'upstream-gpt')).status).toBe(402);
    await g.restart();
    expect(await g.spendOf('failed-first')).toBe(2n * cost);
    expect((await chat(g.gateway.url, 'failed-first', 'upstream-gpt')).status).toBe(402);
  });

  it('moves the counter of a customer taken off its budget before it had spent, to its lifetime spend', async () => {
    g.upstream.reset();
    const probe = await chat(g.gateway.url, 'probe-taken-off', 'upstream-gpt');
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'taken-off', max_budget: 100, budget_duration: '1d' })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'taken-off', budget_id: 'taken-off' })).status).toBe(200);
    g.upstream.behavior = { ...g.upstream.behavior, mode: 'error', status: 400 };
    expect((await chat(g.gateway.url, 'taken-off', 'upstream-gpt')).status).toBe(400); // its counter lives in today's period
    g.upstream.reset();

    // No budget (and no default budget): one period, the customer's whole life.
    const updated = await api<{ budget_id: string | null }>(g.gateway.url, 'POST', '/customer/update', { user_id: 'taken-off', budget_id: null });
    expect(updated.status).toBe(200);
    expect(updated.body.budget_id).toBeNull();
    for (let i = 0; i < 2; i++) expect((await chat(g.gateway.url, 'taken-off', 'upstream-gpt')).status).toBe(200);
    expect(await g.spendOf('taken-off')).toBe(2n * cost);
    await g.restart();
    expect(await g.spendOf('taken-off')).toBe(2n * cost);
  });

  it('moves the counter of a customer whose first request was in flight at the change when its next one comes', async () => {
    g.upstream.reset();
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'first-in-flight', max_budget: 100, budget_duration: '1d' })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'first-in-flight', budget_id: 'first-in-flight' })).status).toBe(200);
    await streamHeldWhile(g, 'first-in-flight', async () => {
      expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'first-in-flight', budget_duration: '1mo' })).status).toBe(200);
    });
    // Before its next request: /customer/info reads the counter where it is.
    const [streamed] = await ledgerRows(g.gateway, 'first-in-flight');
    expect(await g.spendOf('first-in-flight')).toBe(streamed!.cost);
    for (let i = 0; i < 2; i++) expect((await chat(g.gateway.url, 'first-in-flight', 'upstream-gpt')).status).toBe(200);
    await expectAllCounted(g, 'first-in-flight', 3, 'month');
  });
});

describe.each(['in-process', 'redis'] as const)('a tier whose period starts later, %s counters', (counters) => {
  const g = gatewayWithCounters(counters);

  // Monthly to daily: the change moves the counters of the customers with spend since today's
  // midnight; this one's only request is still running, its counter in the month.
  it('counts a request in flight across the change in the new period, also when the customer has no spend since its start yet', async () => {
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'monthly-then-daily', max_budget: 100, budget_duration: '1mo' })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'later-in-flight', budget_id: 'monthly-then-daily' })).status).toBe(200);
    await streamHeldWhile(g, 'later-in-flight', async () => {
      expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'monthly-then-daily', budget_duration: '1d' })).status).toBe(200);
      // The customer's next request, while the stream still runs: today's period begins.
      expect((await chat(g.gateway.url, 'later-in-flight', 'upstream-gpt')).status).toBe(200);
    });
    await expectAllCounted(g, 'later-in-flight', 2, 'day');
  });
});

describe('a request in flight across a period change, its settlement answered after the ledger stored it', () => {
  // Replies may be held back for seconds without the fail mode applying.
  const link = gatewayBehindRedisLink('tollgate:\n  redis_command_timeout_ms: 10000\n');
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const storedCounters = async (user: string) =>
    queryDatabase<{ month: boolean; spend: string }>(
      link.database.url,
      `select period_start = date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' as month, spend_pico::text as spend
       from spend_counters where customer_id = $1 and scope = '' order by period_start`,
      [user],
    );

  it('moves its charge to the new period in the store with the next batch', async () => {
    expect((await api(link.gateway.url, 'POST', '/budget/new', { budget_id: 'late-reply', max_budget: 100, budget_duration: '1d' })).status).toBe(200);
    expect((await api(link.gateway.url, 'POST', '/customer/new', { user_id: 'late', budget_id: 'late-reply' })).status).toBe(200);
    const before = await slowChat(link.gateway.url, 'late'); // spend since the new start: the change moves its counter
    const earlier = dollarsToPico(before.headers.get('x-litellm-response-cost')!);
    await link.gateway.ledger.flush();
    const answer = slowChat(link.gateway.url, 'late'); // admitted under the daily period, answered after 800 ms
    await sleep(200);
    expect((await api(link.gateway.url, 'POST', '/budget/update', { budget_id: 'late-reply', budget_duration: '1mo' })).status).toBe(200);
    await sleep(300);
    // Redis runs the settlement when it comes, but its reply is held until well after the
    // ledger's next batch (200 ms) has stored the row under the counters of admission.
    link.proxy.stall('replies');
    await sleep(1500);
    link.proxy.resume();
    const response = await answer;
    expect(response.status).toBe(200);
    const cost = dollarsToPico(response.headers.get('x-litellm-response-cost')!);
    await link.gateway.ledger.flush();
    await link.gateway.ledger.flush(); // the move waits for the batch after the one that stored the row
    const stored = await storedCounters('late');
    expect(stored.filter((row) => row.month).map((row) => BigInt(row.spend))).toEqual([earlier + cost]);
    // Today's: the first request only; the move took the second off it.
    expect(stored.filter((row) => !row.month).map((row) => BigInt(row.spend))).toEqual([earlier]);
    expect(dollarsToPico((await api<{ spend: number }>(link.gateway.url, 'GET', '/customer/info?end_user_id=late')).body.spend)).toBe(earlier + cost);
  });
});
