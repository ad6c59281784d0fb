/**
 * One process with the in-memory spend book and the embedded store (PGlite), keeping at most
 * two customers in memory (`customer_cache_size: 2`). Customers are read from the store when
 * first served and evicted when others come: budgets stay exact and blocks enforced through
 * eviction and through a restart (which loads no customer at all: each is read, with its
 * period spend, when it is next served). Lists and search come from the store's indexes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, graphql, MASTER_KEY, startTestGateway, testConfigYaml } from './support/gateway';
import { dollarsToPico, picoToDollars } from '../src/shared/money';

type Gateway = Awaited<ReturnType<typeof startTestGateway>>;

async function chat(base: string, user: string): Promise<{ status: number; cost: bigint }> {
  const response = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 }),
  });
  await response.arrayBuffer();
  const cost = response.headers.get('x-litellm-response-cost');
  return { status: response.status, cost: cost ? dollarsToPico(cost) : 0n };
}

async function spendOf(base: string, user: string): Promise<bigint> {
  const info = await api<{ spend: number }>(base, 'GET', `/customer/info?end_user_id=${user}`);
  expect(info.status).toBe(200);
  return dollarsToPico(info.body.spend);
}

describe('a bounded customer cache in one process', () => {
  const yaml = testConfigYaml({ extra: 'tollgate:\n  customer_cache_size: 2\n' });
  let gateway: Gateway;
  let unit: bigint;

  beforeAll(async () => {
    gateway = await startTestGateway({ yaml });
    unit = (await chat(gateway.url, 'probe')).cost;
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  const evict = async (round: number) => {
    for (const other of [`filler-${round}-a`, `filler-${round}-b`]) expect((await chat(gateway.url, other)).status).toBe(200);
  };

  it('keeps a budget exact and a block enforced while the customer is evicted between requests', async () => {
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'capped', max_budget: picoToDollars(unit * 2n) })).status).toBe(200);
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'shut', blocked: true })).status).toBe(200);
    const statuses: number[] = [];
    for (let round = 0; round < 4; round++) {
      statuses.push((await chat(gateway.url, 'capped')).status);
      expect((await chat(gateway.url, 'shut')).status).toBe(403);
      await evict(round);
    }
    expect(statuses).toEqual([200, 200, 402, 402]);
    expect(await spendOf(gateway.url, 'capped')).toBe(unit * 2n);
  });

  it('keeps reservations of requests in flight while their customer is evicted', async () => {
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'busy', max_budget: picoToDollars(unit * 100n) })).status).toBe(200);
    // Many concurrent requests of many customers: the cache of two turns over all the time.
    const users = ['busy', 'other-1', 'other-2', 'other-3', 'other-4'];
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, index) => chat(gateway.url, users[index % users.length]!)));
    expect(outcomes.every((outcome) => outcome.status === 200)).toBe(true);
    for (const user of users) {
      const charged = outcomes.filter((_, index) => users[index % users.length] === user).reduce((sum, outcome) => sum + outcome.cost, 0n);
      expect(await spendOf(gateway.url, user)).toBe(charged);
    }
  });

  it('after a restart (which loads no customer), reads each one with its period spend and block when next served', async () => {
    await gateway.ledger.flush();
    const before = await spendOf(gateway.url, 'capped');
    await gateway.stop();
    gateway = await startTestGateway({ yaml, dataDir: gateway.dataDir });
    expect((await chat(gateway.url, 'capped')).status).toBe(402);
    expect(await spendOf(gateway.url, 'capped')).toBe(before);
    expect((await chat(gateway.url, 'shut')).status).toBe(403);
  });

  it('lists customers from the store by id, keyset-paginated, and searches ids and aliases by substring', async () => {
    for (const [id, alias] of [['acme-1', 'Acme Corp'], ['acme-2', null], ['zeta', 'the acme reseller'], ['100%_off', null]] as const) {
      expect((await api(gateway.url, 'POST', '/customer/new', { user_id: id, alias })).status).toBe(200);
    }
    const all: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: { data?: { customers: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } } = await graphql(
        gateway.url,
        'query ($after: String) { customers(first: 3, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }',
        { after },
      );
      all.push(...page.data!.customers.nodes.map((node) => node.id));
      if (!page.data!.customers.pageInfo.hasNextPage) break;
      after = page.data!.customers.pageInfo.endCursor;
    }
    expect(all.length).toBeGreaterThan(10);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toContain('capped');

    const search = await graphql<{ customers: { nodes: { id: string }[]; totalCount: number } }>(gateway.url, '{ customers(search: "ACME") { nodes { id } totalCount } }');
    expect(search.data!.customers).toEqual({ nodes: [{ id: 'acme-1' }, { id: 'acme-2' }, { id: 'zeta' }], totalCount: 3 });
    // LIKE wildcards in the search are literal.
    const wildcard = await graphql<{ customers: { nodes: { id: string }[] } }>(gateway.url, '{ customers(search: "%_") { nodes { id } } }');
    expect(wildcard.data!.customers.nodes).toEqual([{ id: '100%_off' }]);

    const first = await api<{ user_id: string }[]>(gateway.url, 'GET', '/customer/list?page_size=2&search=acme');
    expect(first.body.map((row) => row.user_id)).toEqual(['acme-1', 'acme-2']);
    expect(first.headers.get('x-total-count')).toBe('3');
    const next = await api<{ user_id: string }[]>(gateway.url, 'GET', `/customer/list?page_size=2&search=acme&after=${first.headers.get('x-next-cursor')}`);
    expect(next.body.map((row) => row.user_id)).toEqual(['zeta']);
    expect(next.headers.get('x-next-cursor')).toBeNull();
  });

  it('answers ids and searches the store cannot hold with a 4xx, not a database error', async () => {
    const clientError = (status: number) => expect(status >= 400 && status < 500, `status ${status}`).toBe(true);
    clientError((await api(gateway.url, 'GET', '/customer/info?end_user_id=a%00b')).status);
    clientError((await api(gateway.url, 'POST', '/customer/delete', { user_ids: ['a\u0000b'] })).status);
    clientError((await api(gateway.url, 'POST', '/customer/update', { user_id: 'a\u0000b', max_budget: 1 })).status);
    const search = await api<{ error: { message: string } }>(gateway.url, 'GET', '/customer/list?search=a%00b');
    expect(search.status).toBe(400);
    expect(search.body.error.message).toContain('search');
    const longCursor = await api(gateway.url, 'GET', `/customer/list?after=${'x'.repeat(300)}`);
    expect(longCursor.status).toBe(400);
  });
});
