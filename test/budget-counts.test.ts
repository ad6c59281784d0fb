/**
 * A budget's customer count (GraphQL `Budget.customerCount`, the console's budgets page) is
 * kept by triggers on `customers`, not counted on each read: it must stay equal to a count of
 * the rows through every way customers arrive, move and leave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, graphql, MASTER_KEY, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';

describe.each(['pglite', 'postgresql'] as const)('budget customer counts on %s', (store) => {
  let database: TestDatabase | null = null;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;

  beforeAll(async () => {
    if (store === 'postgresql') database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: testConfigYaml({ extra: 'litellm_settings:\n  max_end_user_budget_id: walk-in\n' }), databaseUrl: database?.url });
  });
  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
  });

  /** What the API says, and what a count of the rows says, for each budget. */
  async function counts(): Promise<{ api: Record<string, number>; rows: Record<string, number> }> {
    const answer = await graphql<{ budgets: { id: string; customerCount: number }[] }>(gateway.url, '{ budgets { id customerCount } }');
    expect(answer.errors).toBeUndefined();
    const knex = gateway.database.orm.em.getConnection().getKnex();
    const linked = (await knex.raw(`select budget_id, count(*)::int as n from customers where budget_id is not null group by budget_id`)).rows as { budget_id: string; n: number }[];
    const unlinked = ((await knex.raw(`select count(*)::int as n from customers where budget_id is null`)).rows as { n: number }[])[0]!.n;
    const rows: Record<string, number> = {};
    for (const budget of answer.data!.budgets) rows[budget.id] = (linked.find((row) => row.budget_id === budget.id)?.n ?? 0) + (budget.id === 'walk-in' ? unlinked : 0);
    return { api: Object.fromEntries(answer.data!.budgets.map((budget) => [budget.id, budget.customerCount])), rows };
  }

  async function chat(user: string): Promise<number> {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await response.arrayBuffer();
    return response.status;
  }

  it('equal a count of the rows through creation, re-tiering, bulk moves and deletion', async () => {
    for (const id of ['walk-in', 'gold', 'silver', 'doomed']) expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: id, max_budget: 100 })).status).toBe(200);
    // Created through the API, on a tier or not, and by requests (walk-ins, created by the proxy).
    for (let i = 0; i < 5; i++) expect((await api(gateway.url, 'POST', '/customer/new', { user_id: `gold-${i}`, budget_id: 'gold' })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await api(gateway.url, 'POST', '/customer/new', { user_id: `doomed-${i}`, budget_id: 'doomed' })).status).toBe(200);
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'plain-1' })).status).toBe(200);
    const walkIns = await Promise.all(Array.from({ length: 12 }, (_, i) => chat(`walk-in-${i}`)));
    expect(walkIns.every((status) => status === 200)).toBe(true);
    await gateway.ledger.flush();
    let now = await counts();
    expect(now.api).toEqual(now.rows);
    expect(now.api).toMatchObject({ gold: 5, doomed: 3, silver: 0, 'walk-in': 13 });

    // Re-tiered one at a time (REST and GraphQL), and an update that leaves the tier alone.
    expect((await api(gateway.url, 'POST', '/customer/update', { user_id: 'gold-0', budget_id: 'silver' })).status).toBe(200);
    expect((await graphql(gateway.url, 'mutation { updateCustomer(id: "walk-in-0", input: { budgetId: "gold" }) { id } }')).errors).toBeUndefined();
    expect((await api(gateway.url, 'POST', '/customer/update', { user_id: 'gold-1', alias: 'still gold' })).status).toBe(200);
    expect((await api(gateway.url, 'POST', '/customer/block', { user_ids: ['gold-2'] })).status).toBe(200);
    now = await counts();
    expect(now.api).toEqual(now.rows);
    expect(now.api).toMatchObject({ gold: 5, silver: 1, 'walk-in': 12 });

    // A budget deleted with its customers moved, then one detached (they fall to the default).
    expect((await graphql(gateway.url, 'mutation { deleteBudget(id: "doomed", moveTo: "silver") { id } }')).errors).toBeUndefined();
    now = await counts();
    expect(now.api).toEqual(now.rows);
    expect(now.api).toMatchObject({ silver: 4 });
    expect((await api(gateway.url, 'POST', '/budget/delete', { id: 'silver', detach: true })).status).toBe(200);
    now = await counts();
    expect(now.api).toEqual(now.rows);
    expect(now.api).toMatchObject({ gold: 5, 'walk-in': 16 });

    // Deleted customers leave their budget's count.
    expect((await api(gateway.url, 'POST', '/customer/delete', { user_ids: ['gold-3', 'gold-4', 'walk-in-5'] })).status).toBe(200);
    now = await counts();
    expect(now.api).toEqual(now.rows);
    expect(now.api).toMatchObject({ gold: 3, 'walk-in': 15 });
  });
});
