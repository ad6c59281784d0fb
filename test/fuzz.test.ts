/**
 * Fuzzing a real Tollgate process (on PostgreSQL) with fast-check, fixed seed: a few
 * thousand generated requests over the REST routes, GraphQL operations (queries,
 * mutations, variables, and documents that are not GraphQL at all) and the data plane
 * (chat and embeddings bodies, headers, customer ids). Any 5xx, any request that does not
 * answer within its timeout, or the process dying fails the test, with the input.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDataDir, MASTER_KEY, spawnGateway, testConfigYaml, type SpawnedGateway } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';

const SEED = 20261201;
const REQUEST_TIMEOUT_MS = 5_000;

let database: TestDatabase;
let gateway: SpawnedGateway;

interface Sent {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Already serialised: some bodies are not JSON on purpose. */
  body?: string;
}

/** Sends one request; fails on a 5xx, a hang or a dropped connection, naming the input. */
async function send(request: Sent): Promise<number> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}`, ...request.headers };
  let response: Response;
  let text: string;
  try {
    response = await fetch(gateway.url + request.path, { method: request.method, headers, body: request.body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    text = await response.text();
  } catch (error) {
    throw new Error(`no answer (${(error as Error).message}) to ${JSON.stringify(request).slice(0, 2_000)}\n${gateway.output().slice(-3_000)}`, { cause: error });
  }
  // GraphQL reports a failed resolver in a 200 body: that is a server error too.
  const internal = request.path === '/graphql' && /"code":"INTERNAL_SERVER_ERROR"/.test(text);
  if (response.status >= 500 || internal) throw new Error(`${response.status} for ${JSON.stringify(request).slice(0, 2_000)}\n${gateway.output().slice(-3_000)}`);
  return response.status;
}

// Values of every kind where a field is expected, biased towards the edges that broke things.
const edgeStrings = fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '1e309', '-1', 'NaN', 'Infinity', '0', '1.5', '💥', '𝔘𝔫𝔦', 'x'.repeat(300), '2026-01-01', '2026-13-45T99:00:00Z', '99999-01-01', '1d', '30d', '0s', '1mo', 'MXx4', '../../etc', "' or 1=1 --", '__proto__', 'constructor');
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: edgeStrings },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  fc.integer(),
  fc.double(),
  fc.constantFrom(2 ** 53, -(2 ** 53), 1e308, -0, Number.MAX_SAFE_INTEGER + 2),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.string({ maxLength: 10 }), fc.integer()), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)), { maxKeys: 3 }),
);
const idLike = fc.oneof(fc.constantFrom('fuzz-a', 'fuzz-b', 'fuzz-tier'), fc.string({ maxLength: 20 }), edgeStrings);
const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 3 });

const budgetFields = fc.record(
  {
    max_budget: anyValue,
    soft_budget: anyValue,
    rpm_limit: anyValue,
    tpm_limit: anyValue,
    max_parallel_requests: anyValue,
    budget_duration: anyValue,
    budget_reset_at: anyValue,
    model_max_budget: fc.oneof(anyValue, fc.dictionary(fc.constantFrom('gpt-3.5-turbo', 'mistral', 'x'), fc.record({ max_budget: anyValue, budget_duration: anyValue }, { requiredKeys: [] }), { maxKeys: 2 })),
  },
  { requiredKeys: [] },
);
const restBody = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.record({ user_id: anyValue, budget_id: anyValue, alias: anyValue, blocked: anyValue, allowed_model_region: anyValue, default_model: anyValue, user_ids: anyValue, budgets: anyValue, id: anyValue, detach: anyValue, key_alias: anyValue, scope: anyValue, keys: anyValue }, { requiredKeys: [] }), budgetFields).map(([a, b]) => JSON.stringify({ ...a, ...b })) },
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom('', '{', '[]', 'null', '"x"', '{"user_id": "a", "user_id": "b"}', '{"__proto__": {"admin": true}}', '['.repeat(3_000) + ']'.repeat(3_000)),
);
const queryString = fc
  .dictionary(fc.constantFrom('end_user_id', 'budget_id', 'page', 'page_size', 'search', 'end_user', 'customer_id', 'start_date', 'end_date', 'limit', 'after'), fc.oneof(edgeStrings, fc.string({ maxLength: 20 }), fc.integer().map(String)), { maxKeys: 4 })
  .map((params) => new URLSearchParams(params).toString());
const restRoute = fc.constantFrom(
  ['POST', '/customer/new'], ['GET', '/customer/info'], ['POST', '/customer/update'], ['POST', '/customer/delete'], ['GET', '/customer/list'],
  ['POST', '/customer/block'], ['POST', '/customer/unblock'], ['POST', '/end_user/new'], ['GET', '/end_user/info'],
  ['POST', '/budget/new'], ['POST', '/budget/update'], ['POST', '/budget/info'], ['GET', '/budget/list'], ['GET', '/budget/settings'], ['POST', '/budget/delete'],
  ['POST', '/key/generate'], ['GET', '/spend/logs'], ['GET', '/health/readiness'], ['GET', '/nowhere'], ['PUT', '/customer/new'], ['DELETE', '/budget/list'],
);

const GRAPHQL_OPERATIONS = [
  'query ($id: ID!) { customer(id: $id) { id alias spend blocked budgetId budget { id customerCount maxBudget } createdAt } }',
  'query ($first: Int, $after: String, $search: String) { customers(first: $first, after: $after, search: $search) { nodes { id spend } pageInfo { endCursor hasNextPage } totalCount } }',
  'query ($id: ID!) { budget(id: $id) { id maxBudget softBudget rpmLimit budgetDuration resetAt modelMaxBudget customerCount } }',
  '{ budgets { id customerCount } apiKeys { id alias scope revoked } }',
  'query ($c: ID, $from: DateTimeISO, $to: DateTimeISO, $first: Int, $after: String) { spendLogs(customerId: $c, from: $from, to: $to, first: $first, after: $after) { nodes { requestId cost } pageInfo { endCursor } } }',
  'query ($c: ID!) { spendPeriods(customerId: $c) { periodStart spend requests } }',
  'query ($from: DateTimeISO!, $to: DateTimeISO!, $g: SpendGroup!, $c: ID) { spendReport(from: $from, to: $to, groupBy: $g, customerId: $c) { key spend requests } }',
  'mutation ($input: CreateCustomerInput!) { createCustomer(input: $input) { id budget { id } } }',
  'mutation ($id: ID!, $input: CustomerFieldsInput!) { updateCustomer(id: $id, input: $input) { id budgetId } }',
  'mutation ($ids: [ID!]!) { deleteCustomers(ids: $ids) }',
  'mutation ($ids: [ID!]!) { blockCustomers(ids: $ids) { id blocked } }',
  'mutation ($ids: [ID!]!) { unblockCustomers(ids: $ids) { id blocked } }',
  'mutation ($input: CreateBudgetInput!) { createBudget(input: $input) { id customerCount } }',
  'mutation ($id: ID!, $input: BudgetInput!) { updateBudget(id: $id, input: $input) { id maxBudget } }',
  'mutation ($id: ID!, $detach: Boolean) { deleteBudget(id: $id, detach: $detach) { id } }',
  'mutation ($alias: String, $scope: KeyScope) { createApiKey(alias: $alias, scope: $scope) { apiKey { id } } }',
  'subscription { spendUpdated { cost } }',
];
const graphqlInput = fc.record(
  { id: anyValue, alias: anyValue, blocked: anyValue, budgetId: anyValue, allowedModelRegion: anyValue, defaultModel: anyValue, maxBudget: anyValue, softBudget: anyValue, rpmLimit: anyValue, tpmLimit: anyValue, maxParallelRequests: anyValue, budgetDuration: anyValue, resetAt: anyValue, modelMaxBudget: anyValue, budget: fc.oneof(anyValue, fc.record({ maxBudget: anyValue, budgetDuration: anyValue, modelMaxBudget: anyValue }, { requiredKeys: [] })) },
  { requiredKeys: [] },
);
const graphqlVariables = fc.record(
  { id: idLike, ids: fc.oneof(fc.array(idLike, { maxLength: 3 }), anyValue), first: anyValue, after: anyValue, search: anyValue, c: anyValue, from: anyValue, to: anyValue, g: fc.oneof(fc.constantFrom('customer', 'model', 'day'), anyValue), input: fc.oneof({ weight: 4, arbitrary: graphqlInput }, anyValue), detach: anyValue, alias: anyValue, scope: fc.oneof(fc.constantFrom('admin', 'inference'), anyValue) },
  { requiredKeys: [] },
);
const graphqlRequest = fc.oneof(
  { weight: 6, arbitrary: fc.record({ query: fc.constantFrom(...GRAPHQL_OPERATIONS), variables: fc.oneof({ weight: 5, arbitrary: graphqlVariables }, anyValue) }).map((body) => JSON.stringify(body)) },
  fc.record({ query: fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('{', '{ budgets { id ', 'query { __schema { types { name } } }', '{ budgets { ...F } } fragment F on Budget { ...F }', 'mutation { revokeApiKey(id: "nope") { id } }')), variables: maybe(anyValue), operationName: maybe(anyValue) }, { requiredKeys: ['query'] }).map((body) => JSON.stringify(body)),
  fc.record({ query: anyValue, extensions: maybe(fc.record({ persistedQuery: fc.record({ version: anyValue, sha256Hash: anyValue }, { requiredKeys: [] }) })) }, { requiredKeys: [] }).map((body) => JSON.stringify(body)),
  restBody,
);

const message = fc.oneof(
  { weight: 4, arbitrary: fc.record({ role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'tool', 'developer'), anyValue), content: fc.oneof({ weight: 3, arbitrary: fc.string({ maxLength: 60 }) }, anyValue, fc.array(fc.record({ type: fc.constantFrom('text', 'image_url', 'x'), text: anyValue }, { requiredKeys: [] }), { maxLength: 2 })) }, { requiredKeys: [] }) },
  anyValue,
);
const inferenceBody = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record(
        {
          model: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('gpt-3.5-turbo', 'mistral', 'azure-gpt-3.5') }, anyValue),
          messages: fc.oneof({ weight: 4, arbitrary: fc.array(message, { minLength: 1, maxLength: 3 }) }, anyValue),
          input: fc.oneof(fc.string({ maxLength: 40 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), anyValue),
          user: fc.oneof({ weight: 3, arbitrary: idLike }, anyValue),
          max_tokens: anyValue,
          max_completion_tokens: anyValue,
          stream: fc.oneof(fc.boolean(), anyValue),
          stream_options: anyValue,
          n: anyValue,
          temperature: anyValue,
          metadata: anyValue,
        },
        { requiredKeys: [] },
      )
      .map((body) => JSON.stringify(body)),
  },
  restBody,
);
const inferenceHeaders = fc.record(
  {
    authorization: fc.oneof({ weight: 6, arbitrary: fc.constant(`Bearer ${MASTER_KEY}`) }, fc.constantFrom('', 'Bearer', 'Bearer sk-nope', 'Basic abc', `bearer ${MASTER_KEY}`)),
    'content-type': fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1')),
    'x-litellm-end-user-id': fc.stringMatching(/^[\x21-\x7e]{0,30}$/),
    'x-request-id': fc.stringMatching(/^[\x21-\x7e]{0,30}$/),
  },
  { requiredKeys: [] },
);

beforeAll(async () => {
  database = await createTestDatabase();
  gateway = await spawnGateway({ yaml: testConfigYaml(), dataDir: freshDataDir(), env: { DATABASE_URL: database.url } });
}, 90_000);

afterAll(async () => {
  await gateway?.stop();
  await database?.drop();
});

/** `count` inputs drawn with the fixed seed, sent a few at a time (the server is never idle). */
async function fuzz<T>(arbitrary: fc.Arbitrary<T>, count: number, toRequest: (input: T) => Sent): Promise<void> {
  const inputs = fc.sample(arbitrary, { seed: SEED, numRuns: count });
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) await send(toRequest(inputs[next++]!));
  };
  await Promise.all(Array.from({ length: 6 }, worker));
}

describe('fuzzing', () => {
  it('REST routes answer every input below 500', { timeout: 40_000 }, async () => {
    await fuzz(fc.tuple(restRoute, queryString, restBody), 800, ([[method, path], query, body]) => ({ method, path: query ? `${path}?${query}` : path, body: method === 'GET' ? undefined : body }));
  });

  it('GraphQL answers every operation and variables below 500', { timeout: 40_000 }, async () => {
    await fuzz(graphqlRequest, 700, (body) => ({ method: 'POST', path: '/graphql', body }));
  });

  it('the data plane answers every body, header and customer id below 500', { timeout: 40_000 }, async () => {
    const paths = fc.constantFrom('/chat/completions', '/v1/chat/completions', '/embeddings', '/v1/embeddings');
    await fuzz(fc.tuple(paths, inferenceHeaders, inferenceBody), 700, ([path, headers, body]) => ({ method: 'POST', path, headers, body }));
  });

  it('is still alive and serving afterwards', async () => {
    expect(gateway.child.exitCode).toBeNull();
    expect(await send({ method: 'GET', path: '/health/readiness' })).toBe(200);
  });
});
