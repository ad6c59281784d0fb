/**
 * Redis briefly unreachable under a proxy with shared counters: customers' requests are
 * refused with a clear 503 (fail closed, never admitted uncounted), a request already in
 * flight is still served and charged, and its charge reaches the shared counter once Redis
 * is back. The ledger has it throughout. A change notice that could not arrive meanwhile is
 * made up for by reloading everything when Redis returns, and counters a restarted Redis
 * lost are seeded again from PostgreSQL, with the charges this process has not written there
 * yet. With `tollgate.fail_mode: open` the proxy serves
 * instead of refusing, still meters every request, and the counters catch up afterwards.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { api } from './support/gateway';
import { queryDatabase } from './support/postgres';
import { REDIS_URL } from './support/redis';
import { chat, gatewayBehindRedisLink } from './support/redis-link';
import { dollarsToPico } from '../src/shared/money';

describe('redis outage', () => {
  const outage = gatewayBehindRedisLink();

  it('fails closed while Redis is down and catches the counters up after', async () => {
    const first = await chat(outage.gateway.url, 'outage');
    expect(first.status).toBe(200);
    const unit = dollarsToPico(first.headers.get('x-litellm-response-cost')!);
    await first.arrayBuffer();

    expect((await api(outage.gateway.url, 'POST', '/customer/new', { user_id: 'blocked-elsewhere' })).status).toBe(200);
    const inFlight = chat(outage.gateway.url, 'outage'); // admitted now, answered after the cut
    await new Promise((resolve) => setTimeout(resolve, 300));
    await outage.proxy.cut();
    const served = await inFlight;
    expect(served.status).toBe(200);
    expect(dollarsToPico(served.headers.get('x-litellm-response-cost')!)).toBe(unit);

    const refused = await chat(outage.gateway.url, 'outage');
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { type: 'service_unavailable' } });
    expect((await api(outage.gateway.url, 'GET', '/customer/info?end_user_id=outage')).status).toBe(503);

    // Another proxy blocks a customer while this one cannot hear about it.
    await queryDatabase(outage.database.url, `update customers set blocked = true where user_id = 'blocked-elsewhere'`);

    await outage.proxy.restore();
    await expect
      .poll(async () => {
        const info = await api<{ spend: number }>(outage.gateway.url, 'GET', '/customer/info?end_user_id=outage');
        return info.status === 200 ? dollarsToPico(info.body.spend) : null;
      }, { timeout: 20_000, interval: 200 })
      .toBe(2n * unit);
    expect((await chat(outage.gateway.url, 'outage')).status).toBe(200);
    await expect.poll(async () => (await chat(outage.gateway.url, 'blocked-elsewhere')).status, { timeout: 10_000, interval: 200 }).toBe(403);
    await outage.gateway.ledger.flush();
    const logs = await api<{ spend: number }[]>(outage.gateway.url, 'GET', '/spend/logs?end_user=outage&limit=100');
    expect(logs.body.reduce((sum, row) => sum + dollarsToPico(row.spend), 0n)).toBe(3n * unit);
  });

  it('seeds the counters a restarted Redis lost from PostgreSQL once it is back', async () => {
    expect((await chat(outage.gateway.url, 'amnesia')).status).toBe(200);
    await outage.gateway.ledger.flush();
    const before = await api<{ spend: number }>(outage.gateway.url, 'GET', '/customer/info?end_user_id=amnesia');
    expect(before.body.spend).toBeGreaterThan(0);

    await outage.proxy.cut();
    // What a Redis restart without persistence does to this customer's counter.
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    expect(await redis.del(`${outage.prefix}spend:{amnesia}`)).toBe(1);
    redis.disconnect();
    await outage.proxy.restore();

    await expect
      .poll(async () => (await api<{ spend: number }>(outage.gateway.url, 'GET', '/customer/info?end_user_id=amnesia')).body.spend, { timeout: 10_000, interval: 200 })
      .toBe(before.body.spend);
  });

  it('reads back a counter Redis lost without a disconnect before it admits a cached customer again', async () => {
    const cost = await spendBudgetThenLoseCounter(outage, 'lost-cap', { storedFirst: true });
    // Not admitted from zero: the counter is seeded from PostgreSQL first.
    expect((await chat(outage.gateway.url, 'lost-cap')).status).toBe(402);
    expect(await spendOf(outage, 'lost-cap')).toBe(cost);
  });
});

describe('redis losing a counter whose charges are still waiting for the ledger', () => {
  // Batches a minute apart: the charge below is settled in Redis and queued, not yet stored.
  const outage = gatewayBehindRedisLink('tollgate:\n  ledger_flush_interval_ms: 60000\n');

  it('writes what this process has queued before it reads the counter back', async () => {
    const cost = await spendBudgetThenLoseCounter(outage, 'queued-cap', { storedFirst: false });
    // The store did not have the charge yet: read back from it alone, the customer would start over.
    expect((await chat(outage.gateway.url, 'queued-cap')).status).toBe(402);
    expect(await spendOf(outage, 'queued-cap')).toBe(cost);
  });
});

type Outage = ReturnType<typeof gatewayBehindRedisLink>;

/**
 * A new customer whose budget is one request: served once, refused next; then, still cached,
 * its counter vanishes from Redis (a Redis restarted so fast, or a failover to a replica so far
 * behind, that the connection never reported it). `storedFirst`: the ledger has written the
 * charge before. Returns the charge (pico-USD).
 */
async function spendBudgetThenLoseCounter(outage: Outage, user: string, { storedFirst }: { storedFirst: boolean }): Promise<bigint> {
  const probe = await chat(outage.gateway.url, `${user}-probe`);
  const cost = probe.headers.get('x-litellm-response-cost')!;
  expect((await api(outage.gateway.url, 'POST', '/customer/new', { user_id: user, max_budget: Number(cost) })).status).toBe(200);
  expect((await chat(outage.gateway.url, user)).status).toBe(200); // spent the whole budget
  expect((await chat(outage.gateway.url, user)).status).toBe(402);
  if (storedFirst) await outage.gateway.ledger.flush();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  expect(await redis.del(`${outage.prefix}spend:{${user}}`)).toBe(1);
  redis.disconnect();
  return dollarsToPico(cost);
}

async function spendOf(outage: Outage, user: string): Promise<bigint> {
  return dollarsToPico((await api<{ spend: number }>(outage.gateway.url, 'GET', `/customer/info?end_user_id=${user}`)).body.spend);
}

describe('redis outage with fail_mode: open', () => {
  const outage = gatewayBehindRedisLink('tollgate:\n  fail_mode: open\n');

  it('serves and meters customers while Redis is down, keeps refusing blocked ones, and catches the counters up', async () => {
    expect((await api(outage.gateway.url, 'POST', '/customer/new', { user_id: 'open-capped', max_budget: 10, rpm_limit: 1 })).status).toBe(200);
    expect((await api(outage.gateway.url, 'POST', '/customer/new', { user_id: 'open-blocked', blocked: true })).status).toBe(200);
    const first = await chat(outage.gateway.url, 'open-capped');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-tollgate-degraded')).toBeNull();
    const unit = dollarsToPico(first.headers.get('x-litellm-response-cost')!);
    await first.arrayBuffer();
    expect((await chat(outage.gateway.url, 'open-capped')).status).toBe(429); // rpm_limit 1 holds while Redis is up

    await outage.proxy.cut();
    const served = await Promise.all([chat(outage.gateway.url, 'open-capped'), chat(outage.gateway.url, 'open-capped')]);
    for (const response of served) {
      expect(response.status).toBe(200); // rate limits are not checked while the counters are away
      expect(response.headers.get('x-tollgate-degraded')).toBe('shared-counters-unreachable');
      expect(dollarsToPico(response.headers.get('x-litellm-response-cost')!)).toBe(unit);
      await response.arrayBuffer();
    }
    const blocked = await chat(outage.gateway.url, 'open-blocked');
    expect(blocked.status).toBe(403); // blocking lives in the registry, not in Redis
    // Blocked by another process and never served here (not cached): read from PostgreSQL,
    // whose blocked flag holds though its counters cannot be seeded into Redis now.
    await queryDatabase(outage.database.url, `insert into customers (user_id, blocked, created_at, updated_at) values ('open-blocked-elsewhere', true, now(), now())`);
    await queryDatabase(
      outage.database.url,
      `insert into spend_counters (customer_id, scope, period_start, spend_pico, requests, prompt_tokens, completion_tokens, updated_at) values ('open-blocked-elsewhere', '', 'epoch', 5, 1, 1, 1, now())`,
    );
    const blockedElsewhere = await chat(outage.gateway.url, 'open-blocked-elsewhere');
    expect(blockedElsewhere.status).toBe(403);
    await blockedElsewhere.arrayBuffer();

    await outage.proxy.restore();
    await expect
      .poll(async () => {
        const info = await api<{ spend: number }>(outage.gateway.url, 'GET', '/customer/info?end_user_id=open-capped');
        return info.status === 200 ? dollarsToPico(info.body.spend) : null;
      }, { timeout: 20_000, interval: 200 })
      .toBe(3n * unit);
    await outage.gateway.ledger.flush();
    const logs = await api<{ spend: number }[]>(outage.gateway.url, 'GET', '/spend/logs?end_user=open-capped&limit=100');
    expect(logs.body).toHaveLength(3);
    expect(logs.body.reduce((sum, row) => sum + dollarsToPico(row.spend), 0n)).toBe(3n * unit);
  });
});
