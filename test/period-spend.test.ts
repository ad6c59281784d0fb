/**
 * Customers by their period spend, read from the store's indexes (no scan of every customer):
 * lists sorted by spend (both ways, ties by id, keyset pages that give every customer once),
 * status filters (blocked, over budget, active), the overview's near-cap list and "this
 * period" total, each checked against what every customer's own /customer/info says, and the
 * period spend recomputed from the rollups when a tier's period changes or the default budget
 * is created (only customers who spent since the new start get a counter).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, graphql, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { dollarsToPico } from '../src/shared/money';

const CUSTOMERS = Array.from({ length: 12 }, (_, index) => `ps-${String(index + 1).padStart(2, '0')}`);

describe.each(['pglite', 'postgresql'] as const)('period spend on %s', (store) => {
  let database: TestDatabase | null = null;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let base: string;

  const chat = async (user: string) => {
    const response = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
      body: JSON.stringify({ model: 'mistral', user, messages: [{ role: 'user', content: 'Tell me something about tollgates, please.' }] }),
    });
    await response.arrayBuffer();
    return response.status;
  };
  const info = async (user: string) => (await api<{ spend: number }>(base, 'GET', `/customer/info?end_user_id=${user}`)).body.spend;
  const statusOf = async (user: string) => (await graphql<{ customer: { status: string } }>(base, `{ customer(id: "${user}") { status } }`)).data!.customer.status;
  /** Every page of a list, `first` at a time, following the last id as the cursor. */
  const allPages = async (args: string, first: number) => {
    const ids: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 50; page++) {
      const result: { data?: { customers: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }; errors?: unknown } = await graphql(
        base,
        `query($after: String) { customers(first: ${first}, ${args}, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      expect(result.errors).toBeUndefined();
      const nodes = result.data!.customers.nodes;
      ids.push(...nodes.map((node) => node.id));
      if (!result.data!.customers.pageInfo.hasNextPage || !nodes.length) break;
      after = nodes[nodes.length - 1]!.id;
    }
    return ids;
  };
  const spends = async () => new Map(await Promise.all(CUSTOMERS.map(async (id) => [id, dollarsToPico(await info(id))] as const)));

  beforeAll(async () => {
    if (store === 'postgresql') database = await createTestDatabase();
    gateway = await startTestGateway({ databaseUrl: database?.url, yaml: testConfigYaml({ extra: 'litellm_settings:\n  max_end_user_budget_id: house\n' }) });
    base = gateway.url;
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'gold', max_budget: 10 })).status).toBe(200);
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'tiny', max_budget: 0.00001 })).status).toBe(200);
    for (const [index, id] of CUSTOMERS.entries()) {
      const budget = index % 3 === 0 ? 'gold' : index % 3 === 1 ? 'tiny' : undefined;
      expect((await api(base, 'POST', '/customer/new', { user_id: id, ...(budget ? { budget_id: budget } : {}) })).status).toBe(200);
      // 0 to 3 requests each: ties of equal spend, and customers without any.
      for (let request = 0; request < index % 4; request++) await chat(id);
    }
    expect((await api(base, 'POST', '/customer/block', { user_ids: ['ps-06'] })).status).toBe(200);
  });
  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
  });

  it('sorts by period spend both ways, ties by id, and keyset pages give every customer once', async () => {
    const spend = await spends();
    expect(new Set(spend.values()).size).toBeGreaterThan(2);
    const byDesc = [...CUSTOMERS].sort((a, b) => (spend.get(a)! === spend.get(b)! ? a.localeCompare(b) : spend.get(a)! > spend.get(b)! ? -1 : 1));
    const byAsc = [...CUSTOMERS].sort((a, b) => (spend.get(a)! === spend.get(b)! ? a.localeCompare(b) : spend.get(a)! < spend.get(b)! ? -1 : 1));
    expect(await allPages('sort: spend_desc', 5)).toEqual(byDesc);
    expect(await allPages('sort: spend_desc', 2)).toEqual(byDesc);
    expect(await allPages('sort: spend_asc', 5)).toEqual(byAsc);
    expect(await allPages('sort: spend_asc', 3)).toEqual(byAsc);
    // With a filter on the budget in force: the tier's customers only, same order.
    expect(await allPages('sort: spend_desc, budgetId: "gold"', 2)).toEqual(byDesc.filter((id) => CUSTOMERS.indexOf(id) % 3 === 0));
    // As the console asks: variables, an offset, no status.
    const asConsole = await graphql<{ customers: { nodes: { id: string }[] } }>(
      base,
      'query($first: Int!, $offset: Int, $search: String, $budgetId: String, $status: CustomerStatus, $sort: CustomerSort) { customers(first: $first, offset: $offset, search: $search, budgetId: $budgetId, status: $status, sort: $sort) { nodes { id } } }',
      { first: 50, offset: 0, search: null, budgetId: 'gold', status: null, sort: 'spend_desc' },
    );
    expect(asConsole.data!.customers.nodes.map((node) => node.id)).toEqual(byDesc.filter((id) => CUSTOMERS.indexOf(id) % 3 === 0));
  });

  it('filters by status as each customer reports it', async () => {
    const statuses = new Map(await Promise.all(CUSTOMERS.map(async (id) => [id, await statusOf(id)] as const)));
    expect([...statuses.values()]).toEqual(expect.arrayContaining(['blocked', 'over_budget', 'active']));
    for (const status of ['blocked', 'over_budget', 'active']) {
      const expected = CUSTOMERS.filter((id) => statuses.get(id) === status);
      expect(await allPages(`status: ${status}`, 2), status).toEqual(expected);
    }
    // Sorted by spend and filtered: both at once.
    const spend = await spends();
    const over = CUSTOMERS.filter((id) => statuses.get(id) === 'over_budget').sort((a, b) => (spend.get(a)! === spend.get(b)! ? a.localeCompare(b) : spend.get(a)! > spend.get(b)! ? -1 : 1));
    expect(await allPages('status: over_budget, sort: spend_desc', 1)).toEqual(over);
  });

  it("lists the customers near their cap and totals this period's spend like /customer/info", async () => {
    const spend = await spends();
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const overview = await graphql<{ overview: { periodSpend: number; nearCap: { customerId: string; used: number; budgetId: string }[] } }>(
      base,
      'query($from: DateTimeISO!, $to: DateTimeISO!) { overview(from: $from, to: $to) { periodSpend nearCap(fraction: 0.5, first: 20) { customerId used budgetId } } }',
      { from, to },
    );
    const tinyMax = dollarsToPico(0.00001);
    const near = CUSTOMERS.filter((id) => CUSTOMERS.indexOf(id) % 3 === 1 && spend.get(id)! * 2n >= tinyMax).sort((a, b) => (spend.get(a)! === spend.get(b)! ? a.localeCompare(b) : spend.get(a)! > spend.get(b)! ? -1 : 1));
    expect(near.length).toBeGreaterThan(0);
    expect(overview.data!.overview.nearCap.map((row) => row.customerId)).toEqual(near);
    expect(overview.data!.overview.nearCap.every((row) => row.budgetId === 'tiny' && row.used >= 0.5)).toBe(true);
    const total = [...spend.values()].reduce((sum, value) => sum + value, 0n);
    expect(dollarsToPico(overview.data!.overview.periodSpend)).toBe(total);
  });

  it("recomputes from the rollups when a tier's period changes or the default budget appears, and totals still agree", async () => {
    const before = await spends();
    // Every spend so far is of the last minutes: inside a new 30-day period of the tier too.
    expect((await api(base, 'POST', '/budget/update', { budget_id: 'gold', budget_duration: '30d' })).status).toBe(200);
    // The default budget (max_end_user_budget_id: house) now exists: customers without a budget move from their lifetime to its day.
    expect((await api(base, 'POST', '/budget/new', { budget_id: 'house', max_budget: 50, budget_duration: '1d' })).status).toBe(200);
    const after = await spends();
    expect(after).toEqual(before);
    // Three period starts now (gold's, house's, tiny's lifetime): "this period" sums the counters at each.
    const overview = await graphql<{ overview: { periodSpend: number } }>(base, 'query($from: DateTimeISO!, $to: DateTimeISO!) { overview(from: $from, to: $to) { periodSpend } }', {
      from: new Date(Date.now() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(dollarsToPico(overview.data!.overview.periodSpend)).toBe([...after.values()].reduce((sum, value) => sum + value, 0n));
    // New spend lands on the recomputed counters.
    const gold = CUSTOMERS[3]!;
    expect(await chat(gold)).toBe(200);
    expect(dollarsToPico(await info(gold))).toBeGreaterThan(after.get(gold)!);
    const sorted = await allPages('sort: spend_desc, budgetId: "gold"', 10);
    expect(sorted[0]).toBe(gold);
  });
});
