/**
 * In-process counters (no Redis) of customers gone idle: once the store holds all they count
 * and the customer is no longer cached, the spend book forgets them, and the customer's next
 * request reads them back from the store. A customer at its cap is still refused after that,
 * and its spend still equals its ledger. A real gateway on PostgreSQL, with a clock the test
 * moves past the idle time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, MASTER_KEY, testConfigYaml } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { parseConfig } from '../src/config/load';
import { startGateway, type RunningGateway } from '../src/server/gateway';
import { COUNTER_IDLE_MS, MemorySpendBook } from '../src/shared-state/memory';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

function chat(base: string, user: string) {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'what time is it' }], max_tokens: 5 }),
    signal: AbortSignal.timeout(30_000),
  });
}

describe('in-process counters of idle customers', () => {
  let database: TestDatabase;
  let gateway: RunningGateway;
  let clockMs = Date.now();

  beforeAll(async () => {
    database = await createTestDatabase();
    const config = parseConfig(testConfigYaml({ extra: 'tollgate:\n  customer_cache_size: 2\n' }), { TOLLGATE_DATA_DIR: freshDataDir(), DATABASE_URL: database.url });
    gateway = await startGateway(config, { port: 0, host: '127.0.0.1', now: () => new Date(clockMs) });
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
  });

  it('forgets them once stored, and still refuses a customer at its cap after reading them back', async () => {
    const book = gateway.services.context.spendBook;
    expect(book).toBeInstanceOf(MemorySpendBook);
    const probe = await chat(gateway.url, 'probe');
    const cost = dollarsToPico(probe.headers.get('x-litellm-response-cost')!);
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'capped', max_budget: Number(picoToDollars(2n * cost)) })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await chat(gateway.url, 'capped')).status).toBe(200);
    expect((await chat(gateway.url, 'capped')).status).toBe(402);

    // Others push it out of the cache of two; its rows reach the store.
    for (const id of ['filler-1', 'filler-2', 'filler-3']) expect((await chat(gateway.url, id)).status).toBe(200);
    await gateway.ledger.flush();
    expect((book as MemorySpendBook).holdsAnyOf('capped')).toBe(true);
    clockMs += COUNTER_IDLE_MS + 1_000;
    for (let i = 0; i < 10; i++) expect((await chat(gateway.url, 'busy')).status).toBe(200);
    expect((book as MemorySpendBook).holdsAnyOf('capped')).toBe(false);

    // Read back from the store: still at its cap, refused, its spend its ledger's.
    const refused = await chat(gateway.url, 'capped');
    expect(refused.status).toBe(402);
    const info = await api<{ spend: number }>(gateway.url, 'GET', '/customer/info?end_user_id=capped');
    await gateway.ledger.flush();
    const ledger = await queryDatabase<{ total: string }>(database.url, `select sum(charge_pico)::text as total from spend_ledger where customer_id = 'capped'`);
    expect(dollarsToPico(info.body.spend)).toBe(2n * cost);
    expect(ledger[0]!.total).toBe((2n * cost).toString());
  });
});
