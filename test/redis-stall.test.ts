/**
 * A Redis connection that stalls silently (the socket stays open, no byte crosses), the fault
 * a dropped route or a vanished peer gives: no request may hang on it, and no spend may be
 * lost from the shared counters or counted twice. Each command waits at most
 * `redis_command_timeout_ms`, then the fail mode applies (503 + retry-after in `closed`,
 * degraded service in `open`); every counter update stays pending (the catch-up gauge says so)
 * until Redis confirms it, and once the link is back the shared counters equal the ledger,
 * with nothing left reserved. Stalls of both directions and of the replies only (Redis
 * executes the commands, the proxy never hears back: the resends must not double count),
 * followed by a resume or by a reset of the connection.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { api } from './support/gateway';
import { ledgerRows } from './support/ledger';
import { scrape, total } from './support/metrics';
import { REDIS_URL } from './support/redis';
import { chat, gatewayBehindRedisLink } from './support/redis-link';
import { dollarsToPico } from '../src/shared/money';

const TIMEOUTS = 'tollgate:\n  redis_command_timeout_ms: 300\n';

/** The customer's overall counter straight from Redis: settled spend and outstanding reservations. */
async function sharedCounter(prefix: string, customerId: string): Promise<{ spend: bigint; reserved: bigint }> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const [spend, reserved] = await redis.hmget(`${prefix}spend:{${customerId}}`, 'spend:', 'reserved:');
    return { spend: BigInt(spend ?? '0'), reserved: BigInt(reserved ?? '0') };
  } finally {
    redis.disconnect();
  }
}

async function ledgerTotal(gateway: Parameters<typeof ledgerRows>[0], customerId: string): Promise<{ rows: number; cost: bigint }> {
  const rows = await ledgerRows(gateway, customerId);
  return { rows: rows.length, cost: rows.reduce((sum, row) => sum + row.cost, 0n) };
}

async function catchUpGauge(base: string): Promise<number> {
  return total(await scrape(base), 'tollgate_shared_counter_catch_up');
}

/** After the link is back: the counter equals the ledger, nothing stays reserved, nothing is pending. */
async function expectCountersEqualLedger(link: ReturnType<typeof gatewayBehindRedisLink>, customerId: string, requests: number): Promise<void> {
  const ledger = await ledgerTotal(link.gateway, customerId);
  expect(ledger.rows).toBe(requests);
  await expect.poll(() => sharedCounter(link.prefix, customerId), { timeout: 20_000, interval: 200 }).toEqual({ spend: ledger.cost, reserved: 0n });
  await expect.poll(() => catchUpGauge(link.gateway.url), { timeout: 10_000, interval: 200 }).toBe(0);
  const info = await api<{ spend: number }>(link.gateway.url, 'GET', `/customer/info?end_user_id=${customerId}`);
  expect(info.status).toBe(200);
  expect(dollarsToPico(String(info.body.spend))).toBe(ledger.cost);
}

/** Starts `count` requests and waits until the gateway has admitted them (they are upstream). */
async function startInFlight(link: ReturnType<typeof gatewayBehindRedisLink>, customerId: string, count: number): Promise<Promise<Response>[]> {
  const requests = Array.from({ length: count }, () => chat(link.gateway.url, customerId));
  await expect.poll(async () => total(await scrape(link.gateway.url), 'tollgate_requests_in_flight'), { timeout: 5_000, interval: 20 }).toBeGreaterThanOrEqual(count);
  await new Promise((resolve) => setTimeout(resolve, 100)); // past admission: the mock answers after 800 ms
  return requests;
}

describe('a silently stalled Redis, fail_mode: closed', () => {
  const link = gatewayBehindRedisLink(TIMEOUTS);

  for (const { direction, end } of [
    { direction: 'both', end: 'resume' },
    { direction: 'replies', end: 'resume' },
    { direction: 'both', end: 'reset' },
    { direction: 'replies', end: 'reset' },
  ] as const) {
    it(`answers 503 instead of hanging, and loses no spend (stall of ${direction === 'both' ? 'every byte' : 'the replies'}, then ${end})`, async () => {
      const customer = `stall-closed-${direction}-${end}`;
      expect((await api(link.gateway.url, 'POST', '/customer/new', { user_id: customer, max_budget: 100, rpm_limit: 1000, max_parallel_requests: 10 })).status).toBe(200);
      const first = await chat(link.gateway.url, customer);
      expect(first.status).toBe(200);
      await first.arrayBuffer();

      const inFlight = await startInFlight(link, customer, 3);
      link.proxy.stall(direction);
      // Admitted before the stall: served and charged, their settlement waits for Redis.
      for (const response of await Promise.all(inFlight)) {
        expect(response.status).toBe(200);
        await response.arrayBuffer();
      }
      // Admission cannot be checked: a bounded wait, then a 503 the client can retry.
      const refused = await chat(link.gateway.url, customer);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await refused.json()).toMatchObject({ error: { type: 'service_unavailable' } });
      expect((await api(link.gateway.url, 'GET', `/customer/info?end_user_id=${customer}`)).status).toBe(503);
      // The three settlements are not confirmed: the gauge must not read "caught up".
      expect(await catchUpGauge(link.gateway.url)).toBeGreaterThanOrEqual(3);

      if (end === 'resume') link.proxy.resume();
      else {
        await link.proxy.cut();
        await link.proxy.restore();
      }
      await expectCountersEqualLedger(link, customer, 4);
      const after = await chat(link.gateway.url, customer);
      expect(after.status).toBe(200);
      await after.arrayBuffer();
      await expectCountersEqualLedger(link, customer, 5);
    });
  }
});

describe('a silently stalled Redis, fail_mode: open', () => {
  const link = gatewayBehindRedisLink(`${TIMEOUTS}  fail_mode: open\n`);

  it('serves degraded instead of hanging, gives back the parallel slots it may have taken, and loses no spend', async () => {
    const customer = 'stall-open';
    expect((await api(link.gateway.url, 'POST', '/customer/new', { user_id: customer, max_budget: 100, max_parallel_requests: 1 })).status).toBe(200);
    const first = await chat(link.gateway.url, customer);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-tollgate-degraded')).toBeNull();
    await first.arrayBuffer();

    // Redis executes the admissions (taking the one parallel slot) but the proxy never hears.
    link.proxy.stall('replies');
    const served = await Promise.all([chat(link.gateway.url, customer), chat(link.gateway.url, customer)]);
    for (const response of served) {
      expect(response.status).toBe(200);
      expect(response.headers.get('x-tollgate-degraded')).toBe('shared-counters-unreachable');
      await response.arrayBuffer();
    }
    expect(await catchUpGauge(link.gateway.url)).toBeGreaterThan(0);
    link.proxy.resume();

    await expectCountersEqualLedger(link, customer, 3);
    // The slot a timed-out admission took in Redis was given back by its settlement.
    const after = await chat(link.gateway.url, customer);
    expect(after.status).toBe(200);
    expect(after.headers.get('x-tollgate-degraded')).toBeNull();
    await after.arrayBuffer();
    await expectCountersEqualLedger(link, customer, 4);
  });

  it('serves degraded through a stall of every byte followed by a reset, and loses no spend', async () => {
    const customer = 'stall-open-reset';
    const inFlight = await startInFlight(link, customer, 2);
    link.proxy.stall('both');
    const during = await chat(link.gateway.url, customer);
    expect(during.status).toBe(200);
    expect(during.headers.get('x-tollgate-degraded')).toBe('shared-counters-unreachable');
    await during.arrayBuffer();
    for (const response of await Promise.all(inFlight)) {
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    await link.proxy.cut();
    await link.proxy.restore();
    await expectCountersEqualLedger(link, customer, 3);
  });
});
