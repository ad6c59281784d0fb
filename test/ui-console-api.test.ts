/**
 * The GraphQL the operator's console reads, against a real gateway (embedded store): the
 * default budget cannot be deleted (409, REST and GraphQL), a budget in use neither unless
 * its customers move, soft <= max, refused requests recorded (not charged) and counted by
 * reason, customer status, overview totals equal to the ledger, the audit trail, alert
 * history from the database, and keys' last use.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, graphql, startTestGateway, testConfigYaml } from './support/gateway';

let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let base: string;

function chat(user: string, key = 'sk-1234') {
  return fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'Tell me something about tollgates, please.' }] }),
  });
}

async function gql<T>(query: string, variables: Record<string, unknown> = {}) {
  return graphql<T>(base, query, variables);
}

beforeAll(async () => {
  gateway = await startTestGateway({ yaml: testConfigYaml({ extra: 'litellm_settings:\n  max_end_user_budget_id: default-tier\n' }) });
  base = gateway.url;
  expect((await api(base, 'POST', '/budget/new', { budget_id: 'default-tier', max_budget: 100 })).status).toBe(200);
});

afterAll(async () => {
  await gateway?.stop();
});

describe('console API', () => {
  it('refuses to delete the default budget (409, REST and GraphQL) and counts every customer under it', async () => {
    await api(base, 'POST', '/customer/new', { user_id: 'walk-in-1' });
    await api(base, 'POST', '/customer/new', { user_id: 'walk-in-2' });
    const rest = await api<{ detail: { error: string } }>(base, 'POST', '/budget/delete', { id: 'default-tier', detach: true });
    expect(rest.status).toBe(409);
    expect(rest.body.detail.error).toContain('default budget (litellm_settings.max_end_user_budget_id)');
    const viaGraphQL = await gql<{ deleteBudget: unknown }>('mutation { deleteBudget(id: "default-tier", detach: true) { id } }');
    expect(viaGraphQL.errors?.[0]?.extensions).toMatchObject({ status: 409, code: 'conflict', param: 'id' });
    const budgets = await gql<{ budgets: { id: string; isDefault: boolean; customerCount: number }[] }>('{ budgets { id isDefault customerCount } }');
    expect(budgets.data!.budgets.find((b) => b.id === 'default-tier')).toEqual({ id: 'default-tier', isDefault: true, customerCount: 2 });
  });

  it('refuses to delete a budget customers use (409 naming them) unless they move to another budget', async () => {
    await api(base, 'POST', '/budget/new', { budget_id: 'pro', max_budget: 50 });
    await api(base, 'POST', '/budget/new', { budget_id: 'old-pro', max_budget: 20 });
    await api(base, 'POST', '/customer/new', { user_id: 'moving-1', budget_id: 'old-pro' });
    const refused = await gql('mutation { deleteBudget(id: "old-pro") { id } }');
    expect(refused.errors?.[0]?.extensions).toMatchObject({ status: 409, code: 'conflict' });
    expect(refused.errors?.[0]?.message).toContain('moving-1');
    const moved = await gql('mutation { deleteBudget(id: "old-pro", moveTo: "pro") { id } }');
    expect(moved.errors).toBeUndefined();
    const customer = await gql<{ customer: { budgetId: string } }>('{ customer(id: "moving-1") { budgetId } }');
    expect(customer.data!.customer.budgetId).toBe('pro');
    const audit = await gql<{ customerAudit: { action: string; changes: unknown }[] }>('{ customerAudit(customerId: "moving-1") { action changes } }');
    expect(audit.data!.customerAudit[0]).toEqual({ action: 'updated', changes: { budgetId: ['old-pro', 'pro'] } });
  });

  it('refuses a soft budget above the max budget, naming the field, on create and on update', async () => {
    const rest = await api<{ detail: { error: string; param?: string } }>(base, 'POST', '/budget/new', { budget_id: 'upside-down', max_budget: 2, soft_budget: 5 });
    expect(rest.status).toBe(400);
    expect(rest.body.detail.error).toContain('soft_budget');
    const created = await gql('mutation { createBudget(input: { id: "upside-down", maxBudget: 2, softBudget: 5 }) { id } }');
    expect(created.errors?.[0]?.extensions).toMatchObject({ status: 400, param: 'softBudget' });
    await gql('mutation { createBudget(input: { id: "right-way", maxBudget: 10, softBudget: 5 }) { id } }');
    const lowered = await gql('mutation { updateBudget(id: "right-way", input: { maxBudget: 4 }) { id } }');
    expect(lowered.errors?.[0]?.extensions).toMatchObject({ status: 400, param: 'softBudget' });
    const inline = await api(base, 'POST', '/customer/new', { user_id: 'inline-upside', max_budget: 1, soft_budget: 3 });
    expect(inline.status).toBe(400);
    // Inline limits of every kind (a model budget too) are recorded in the audit trail.
    const perModel = await api(base, 'POST', '/customer/new', { user_id: 'per-model-audit', max_budget: 100, budget_duration: '30d', model_max_budget: { mistral: { max_budget: 0.5, budget_duration: '1d' } } });
    expect(perModel.status).toBe(200);
    const audit = await gql<{ customerAudit: { changes: { limits: [null, Record<string, unknown>] } }[] }>('{ customerAudit(customerId: "per-model-audit") { changes } }');
    expect(audit.data!.customerAudit[0]!.changes.limits[1]).toEqual({ maxBudget: 100, budgetDuration: '30d', modelMaxBudget: { mistral: { maxBudget: 0.5, duration: '1d' } } });
  });

  it('records refused requests off the request path, uncharged, one row per minute with a count', async () => {
    await api(base, 'POST', '/budget/new', { budget_id: 'tiny', max_budget: 0.00001 });
    await api(base, 'POST', '/customer/new', { user_id: 'over-cap', budget_id: 'tiny' });
    expect((await chat('over-cap')).status).toBe(200); // spends past the tiny cap
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await chat('over-cap')).status);
    expect(statuses).toEqual([402, 402, 402]);
    const refusals = await gql<{ refusedRequests: { reason: string; status: number; limitType: string; limitValue: string; budgetId: string; count: number; model: string }[] }>(
      '{ refusedRequests(customerId: "over-cap") { reason status limitType limitValue budgetId count model } }',
    );
    expect(refusals.data!.refusedRequests).toHaveLength(1);
    expect(refusals.data!.refusedRequests[0]).toMatchObject({ reason: 'budget_exceeded', status: 402, limitType: 'max_budget', budgetId: 'tiny', count: 3, model: 'gpt-3.5-turbo' });
    const logs = await gql<{ spendLogs: { nodes: unknown[] } }>('{ spendLogs(customerId: "over-cap") { nodes { requestId } } }');
    expect(logs.data!.spendLogs.nodes).toHaveLength(1); // refusals are not in the ledger
    const customer = await gql<{ customer: { status: string } }>('{ customer(id: "over-cap") { status } }');
    expect(customer.data!.customer.status).toBe('over_budget');
    const overCap = await gql<{ customers: { nodes: { id: string }[]; totalCount: number } }>('{ customers(status: over_budget) { nodes { id } totalCount } }');
    expect(overCap.data!.customers.nodes.map((c) => c.id)).toEqual(['over-cap']);
    const blocked = await api(base, 'POST', '/customer/block', { user_ids: ['blocked-one'] });
    expect(blocked.status).toBe(200);
    expect((await chat('blocked-one')).status).toBe(403);
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const overview = await gql<{ overview: { refusalsByReason: { reason: string; count: number; customers: number }[]; nearCap: { customerId: string; used: number }[] } }>(
      'query($from: DateTimeISO!, $to: DateTimeISO!) { overview(from: $from, to: $to) { refusalsByReason { reason count customers } nearCap { customerId used } } }',
      { from, to },
    );
    expect(overview.data!.overview.refusalsByReason).toEqual(
      expect.arrayContaining([
        { reason: 'budget_exceeded', count: 3, customers: 1 },
        { reason: 'customer_blocked', count: 1, customers: 1 },
      ]),
    );
    expect(overview.data!.overview.nearCap[0]).toMatchObject({ customerId: 'over-cap' });
    expect(overview.data!.overview.nearCap[0]!.used).toBeGreaterThanOrEqual(1);
  });

  it("gives overview totals equal to the ledger's rows", async () => {
    for (const user of ['walk-in-1', 'walk-in-2', 'walk-in-2', 'moving-1']) expect((await chat(user)).status).toBe(200);
    const logs = await gql<{ spendLogs: { nodes: { cost: number; customerId: string; model: string }[] } }>('{ spendLogs(first: 1000) { nodes { cost customerId model } } }');
    const ledgerTotal = logs.data!.spendLogs.nodes.reduce((sum, row) => sum + row.cost, 0);
    const from = new Date(Date.now() - 7 * 86_400_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const result = await gql<{
      overview: { range: { spend: number; requests: number }; today: { spend: number; requests: number }; last30Days: { spend: number }; series: { spend: number }[]; topCustomers: { key: string; spend: number }[]; byModel: { spend: number }[]; byTier: { key: string; spend: number }[] };
    }>(
      `query($from: DateTimeISO!, $to: DateTimeISO!) { overview(from: $from, to: $to, timeZone: "Europe/Paris") {
        range { spend requests } today { spend requests } last30Days { spend } series { spend } topCustomers(first: 3) { key spend } byModel { spend } byTier { key spend } } }`,
      { from, to },
    );
    expect(result.errors).toBeUndefined();
    const o = result.data!.overview;
    const close = (value: number) => expect(value).toBeCloseTo(ledgerTotal, 9);
    close(o.range.spend);
    close(o.last30Days.spend);
    close(o.series.reduce((sum, p) => sum + p.spend, 0));
    close(o.byModel.reduce((sum, p) => sum + p.spend, 0));
    close(o.byTier.reduce((sum, p) => sum + p.spend, 0));
    expect(o.range.requests).toBe(logs.data!.spendLogs.nodes.length);
    expect(o.series.length).toBeGreaterThanOrEqual(8); // every day of the range, zeros included
    expect(o.topCustomers[0]!.key).toBe('walk-in-2');
    expect(o.byTier.find((t) => t.key === 'default-tier')!.spend).toBeGreaterThan(0);
  });

  it('refuses bad overview input with a 400 naming the field', async () => {
    const zone = await gql('{ overview(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", timeZone: "Mars/Olympus") { today { spend } } }');
    expect(zone.errors?.[0]?.extensions).toMatchObject({ status: 400, param: 'timeZone' });
    const backwards = await gql('{ overview(from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z") { today { spend } } }');
    expect(backwards.errors?.[0]?.extensions).toMatchObject({ status: 400, param: 'to' });
    const huge = await gql('{ overview(from: "1971-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z", bucket: hour) { series { key } } }');
    expect(huge.errors?.[0]?.extensions).toMatchObject({ status: 400, param: 'to' });
  });

  it('keeps an audit trail of changes to a customer, with who made them', async () => {
    await gql('mutation { updateCustomer(id: "walk-in-1", input: { alias: "Walker", budgetId: "pro" }) { id } }');
    await gql('mutation { blockCustomers(ids: ["walk-in-1"]) { id } }');
    const audit = await gql<{ customerAudit: { action: string; actor: string; changes: Record<string, unknown> }[] }>('{ customerAudit(customerId: "walk-in-1") { action actor changes } }');
    const [blocked, updated, created] = audit.data!.customerAudit;
    expect(blocked).toMatchObject({ action: 'blocked', changes: { blocked: [false, true] } });
    expect(updated).toMatchObject({ action: 'updated', actor: 'litellm_proxy_admin_name', changes: { alias: [null, 'Walker'], budgetId: [null, 'pro'] } });
    expect(created).toMatchObject({ action: 'created' });
  });

  it('reads budget alerts from the database', async () => {
    await api(base, 'POST', '/customer/new', { user_id: 'alerted', max_budget: 0.00002, soft_budget: 0.000001 });
    expect((await chat('alerted')).status).toBe(200);
    await expect.poll(async () => (await gql<{ budgetAlerts: { type: string }[] }>('{ budgetAlerts(customerId: "alerted") { type } }')).data!.budgetAlerts.length).toBeGreaterThan(0);
  });

  it('lists keys with when they were last used', async () => {
    const created = await gql<{ createApiKey: { key: string; apiKey: { id: string } } }>('mutation { createApiKey(alias: "app", scope: inference) { key apiKey { id } } }');
    const { key, apiKey } = created.data!.createApiKey;
    const before = await gql<{ apiKeyList: { id: string; lastUsedAt: string | null; prefix: string }[] }>('{ apiKeyList { id lastUsedAt prefix } }');
    expect(before.data!.apiKeyList.find((k) => k.id === apiKey.id)).toMatchObject({ lastUsedAt: null, prefix: key.slice(0, 10) });
    expect((await chat('walk-in-2', key)).status).toBe(200);
    const after = await gql<{ apiKeyList: { id: string; lastUsedAt: string | null }[] }>('{ apiKeyList { id lastUsedAt } }');
    expect(after.data!.apiKeyList.find((k) => k.id === apiKey.id)!.lastUsedAt).not.toBeNull();
    await gateway.services.context.keyUsage.flush();
    const stored = await gateway.database.orm.em.getConnection().execute('select last_used_at from api_keys where id = ?', [apiKey.id]);
    expect(stored[0].last_used_at).not.toBeNull();
  });
});
