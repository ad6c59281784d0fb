/**
 * One GraphQL request must not hold the server: hostile documents (nested fragment spreads,
 * thousands of aliases, huge token counts) are refused quickly with a 400 naming the limit,
 * over HTTP and over graphql-ws, while inference keeps being served by the same process (a
 * real child process, so a frozen event loop fails the test by its timeout instead of
 * freezing the test). An operation past its time budget stops at its next field. Budget
 * customer counts are counted by the store, right at tens of thousands of customers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freshDataDir, graphql, MASTER_KEY, openaiClient, spawnGateway, startTestGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { collect, liveClient } from './support/live';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { manyAliases, nestedFragmentSpreads } from './support/hostile-graphql';
import type { RunningGateway } from '../src/server/gateway';

type GraphQLBody = { data?: Record<string, unknown> | null; errors?: { message: string; path?: unknown[]; extensions?: Record<string, unknown> }[] };

let database: TestDatabase;
let gateway: SpawnedGateway;

async function postGraphQL(query: string, timeoutMs = 10_000): Promise<{ status: number; body: GraphQLBody }> {
  const response = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.status, body: (await response.json()) as GraphQLBody };
}

beforeAll(async () => {
  database = await createTestDatabase();
  gateway = await spawnGateway({ yaml: testConfigYaml(), dataDir: freshDataDir(), env: { DATABASE_URL: database.url } });
});

afterAll(async () => {
  await gateway?.stop();
  await database?.drop();
});

describe('hostile GraphQL documents', () => {
  it('refuses 20 levels × 20 fragment spreads at once, while a chat request is served', { timeout: 30_000 }, async () => {
    const [refused, chat] = await Promise.all([
      postGraphQL(nestedFragmentSpreads(20, 20)),
      openaiClient(`${gateway.url}/v1`).chat.completions.create({ model: 'gpt-3.5-turbo', user: 'bystander', messages: [{ role: 'user', content: 'hi' }] }),
    ]);
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0]!.message).toMatch(/Cost limit of 50000 exceeded/);
    expect(refused.body.errors![0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(chat.choices[0]!.message.content).toBeTruthy();
  });

  it('refuses the same document over graphql-ws as an error on that operation, and the connection stays usable', { timeout: 30_000 }, async () => {
    const client = liveClient(gateway.url);
    try {
      const hostile = collect(client, nestedFragmentSpreads(20, 20));
      await hostile.until((d) => d.failure !== null || d.completed, 10_000);
      expect((hostile.delivery.failure as { message: string }[])[0]!.message).toMatch(/Cost limit of 50000 exceeded/);
      const aliases = collect(client, manyAliases(500));
      await aliases.until((d) => d.failure !== null || d.completed, 10_000);
      expect((aliases.delivery.failure as { message: string }[])[0]!.message).toMatch(/Aliases limit of 30 exceeded, found 500/);
      const fine = collect<unknown[]>(client, '{ budgets { id } }');
      await fine.until((d) => d.completed, 10_000);
      expect(fine.delivery.failure).toBeNull();
      expect(fine.delivery.data).toHaveLength(1);
    } finally {
      await client.dispose();
    }
  });

  it('refuses hundreds of aliases with a 400 naming the limit (1,000 exceed the token limit first)', async () => {
    const refused = await postGraphQL(manyAliases(500));
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0]!.message).toMatch(/Aliases limit of 30 exceeded, found 500/);
    const thousand = await postGraphQL(manyAliases(1000));
    expect(thousand.status).toBe(400);
    expect(thousand.body.errors![0]!.message).toMatch(/5000 tokens/);
  });

  it('counts a page size passed as a variable in the cost', async () => {
    const query = 'query ($first: Int!) { customers(first: $first) { nodes { id alias spend blocked budgetId createdAt budget { id maxBudget softBudget rpmLimit tpmLimit maxParallelRequests budgetDuration resetAt customerCount } } } }';
    const post = (first: number) => api<GraphQLBody>(gateway.url, 'POST', '/graphql', { query, variables: { first } });
    const refused = await post(1000);
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0]!.message).toMatch(/Cost limit of 50000 exceeded/);
    expect((await post(50)).status).toBe(200);
  });

  it('stops parsing a document of more tokens than the limit', async () => {
    const refused = await postGraphQL(`{ ${'budgets { id } '.repeat(2_000)} }`);
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0]!.message).toMatch(/Document contains more that 5000 tokens/); // graphql-js's wording
  });
});

describe('budget customer counts', () => {
  it('counts the customers of each budget from the store, at 30,000 customers', { timeout: 60_000 }, async () => {
    for (const id of ['tier-a', 'tier-b', 'tier-empty']) expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: id, max_budget: 10 })).status).toBe(200);
    expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'via-api', budget_id: 'tier-a' })).status).toBe(200);
    // The rest straight into the store: 20,000 on tier-a, 9,999 on tier-b, 1 without a budget.
    await queryDatabase(
      database.url,
      `insert into customers (user_id, blocked, budget_id, created_at, updated_at)
       select 'seeded-' || n, false, case when n <= 20000 then 'tier-a' when n < 30000 then 'tier-b' else null end, now(), now()
       from generate_series(1, 30000) as n`,
    );
    const expected = Object.fromEntries(
      (await queryDatabase<{ budget_id: string; n: number }>(database.url, 'select budget_id, count(*)::int as n from customers where budget_id is not null group by budget_id')).map((row) => [row.budget_id, row.n]),
    );
    expect(expected).toEqual({ 'tier-a': 20_001, 'tier-b': 9_999 });

    const listed = await graphql<{ budgets: { id: string; customerCount: number }[] }>(gateway.url, '{ budgets { id customerCount } }');
    expect(listed.errors).toBeUndefined();
    expect(Object.fromEntries(listed.data!.budgets.map((b) => [b.id, b.customerCount]))).toEqual({ 'tier-a': 20_001, 'tier-b': 9_999, 'tier-empty': 0 });

    const one = await graphql<{ budget: { customerCount: number }; customer: { budget: { customerCount: number } } }>(
      gateway.url,
      '{ budget(id: "tier-b") { customerCount } customer(id: "via-api") { budget { customerCount } } }',
    );
    expect(one.data).toEqual({ budget: { customerCount: 9_999 }, customer: { budget: { customerCount: 20_001 } } });
    const signIn = await graphql<{ budgets: { id: string }[] }>(gateway.url, 'query CheckKey { budgets { id } }');
    expect(signIn.data!.budgets.map((b) => b.id).sort()).toEqual(['tier-a', 'tier-b', 'tier-empty']);
  });
});

describe('time budget', () => {
  let budgeted: RunningGateway;
  let budgetedDatabase: TestDatabase;

  beforeAll(async () => {
    budgetedDatabase = await createTestDatabase();
    budgeted = await startTestGateway({ databaseUrl: budgetedDatabase.url, yaml: testConfigYaml({ extra: 'tollgate:\n  graphql_limits:\n    time_budget_ms: 1\n' }) });
  });

  afterAll(async () => {
    await budgeted?.stop();
    await budgetedDatabase?.drop();
  });

  it('stops an operation at the first field that starts after its budget; nothing after it runs', async () => {
    // Mutations run one after another, each writing the store: 20 cannot fit in 1 ms.
    const ids = Array.from({ length: 20 }, (_, i) => `timed-${i}`);
    const mutation = `mutation { ${ids.map((id, i) => `m${i}: createBudget(input: { id: "${id}", maxBudget: 1 }) { id }`).join(' ')} }`;
    const result = await graphql<Record<string, { id: string }>>(budgeted.url, mutation);
    const stopped = (result.errors ?? []).filter((error) => error.extensions?.code === 'OPERATION_TIME_BUDGET_EXCEEDED');
    expect(stopped).toHaveLength(1);
    expect(stopped[0]!.message).toMatch(/time budget of 1 ms/);
    // A refused mutation does not run, and (its result being non-null) neither does any after it.
    const stored = (await queryDatabase<{ budget_id: string }>(budgetedDatabase.url, `select budget_id from budgets where budget_id like 'timed-%'`)).map((row) => row.budget_id);
    expect(stored.length).toBeLessThan(ids.length);
    expect(stored.sort()).toEqual(ids.slice(0, stored.length).sort());
    expect((stopped[0] as { path?: unknown }).path).toEqual([`m${stored.length}`]);
  });
});
