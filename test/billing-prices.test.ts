/**
 * Billing for resellers, prices of your own: a tier at 1.25× (and a model priced by the tier
 * itself) with two customers, on PostgreSQL and Redis counters. Every ledger row keeps the
 * provider cost and the customer charge; spend, budgets, the response header and reports speak
 * of the charge, and margin = charge − cost, exact to the pico-dollar.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, graphql, openaiClient, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import { deleteRedisKeys, freshRedisPrefix, REDIS_URL } from './support/redis';
import { dollarsToPico } from '../src/shared/money';

interface Row {
  request_id: string;
  customer_id: string;
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
  cost: bigint;
  charge: bigint;
}

/** $0.2 / $0.6 per 1M tokens: the `mistral` model of the test config. */
const MISTRAL_INPUT_PICO = 200_000n;
const MISTRAL_OUTPUT_PICO = 600_000n;

describe('prices of your own', () => {
  const prefix = freshRedisPrefix();
  let database: TestDatabase;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let base: string;

  async function rows(customerId: string): Promise<Row[]> {
    await gateway.ledger.flush();
    const knex = gateway.database.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select request_id, customer_id, model, prompt_tokens, completion_tokens, cost_pico::text as cost, charge_pico::text as charge
       from spend_ledger where customer_id = ? order by created_at`,
      [customerId],
    );
    return (result.rows as (Omit<Row, 'cost' | 'charge'> & { cost: string; charge: string })[]).map((r) => ({ ...r, cost: BigInt(r.cost), charge: BigInt(r.charge) }));
  }

  async function spendOf(customerId: string): Promise<bigint> {
    const info = await api<{ spend: number }>(base, 'GET', `/customer/info?end_user_id=${customerId}`);
    expect(info.status).toBe(200);
    return dollarsToPico(info.body.spend);
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    gateway = await startTestGateway({ yaml: testConfigYaml(), databaseUrl: database.url, env: { REDIS_URL, TOLLGATE_REDIS_PREFIX: prefix } });
    base = gateway.url;
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    await deleteRedisKeys(prefix);
  });

  it('charges 1.25× the cost (and the tier price of a priced model) to the last digit, and reports the margin', async () => {
    const tier = await api<Record<string, unknown>>(base, 'POST', '/budget/new', {
      budget_id: 'resale-125',
      price_multiplier: 1.25,
      model_prices: { 'gpt-3.5-turbo': { input_cost_per_token: 0.000003, output_cost_per_token: '0.000004' } },
    });
    expect(tier.status).toBe(200);
    expect(tier.body).toMatchObject({
      price_multiplier: 1.25,
      model_prices: { 'gpt-3.5-turbo': { input_cost_per_token: 0.000003, output_cost_per_token: 0.000004, cache_read_input_token_cost: 0.000003 } },
    });
    for (const id of ['alice', 'bob']) expect((await api(base, 'POST', '/customer/new', { user_id: id, budget_id: 'resale-125' })).status).toBe(200);
    // A customer on no tier is charged its cost: LiteLLM semantics.
    const plan: [string, string][] = [['alice', 'mistral'], ['alice', 'mistral'], ['bob', 'mistral'], ['bob', 'gpt-3.5-turbo'], ['carol', 'mistral']];
    const client = openaiClient(`${base}/v1`);
    const headerCharges = new Map<string, bigint>();
    for (const [user, model] of plan) {
      const { response } = await client.chat.completions.create({ model, user, messages: [{ role: 'user', content: 'what time is it' }] }).withResponse();
      headerCharges.set(response.headers.get('x-request-id')!, dollarsToPico(response.headers.get('x-litellm-response-cost')!));
    }

    const all: Row[] = [];
    for (const user of ['alice', 'bob', 'carol']) {
      const own = await rows(user);
      for (const row of own) {
        expect(row.cost).toBe(
          row.model === 'mistral'
            ? BigInt(row.prompt_tokens) * MISTRAL_INPUT_PICO + BigInt(row.completion_tokens) * MISTRAL_OUTPUT_PICO
            : row.cost, // the mock's table price
        );
        const expected =
          user === 'carol' ? row.cost
          : row.model === 'gpt-3.5-turbo' ? BigInt(row.prompt_tokens) * 3_000_000n + BigInt(row.completion_tokens) * 4_000_000n
          : (row.cost * 125n) / 100n;
        if (row.model === 'mistral' && user !== 'carol') expect((row.cost * 125n) % 100n).toBe(0n); // no rounding in play: exact
        expect(row.charge).toBe(expected);
        expect(headerCharges.get(row.request_id)).toBe(row.charge);
      }
      // Spend (what /customer/info and budgets count) is the sum of the charges.
      expect(await spendOf(user)).toBe(own.reduce((sum, row) => sum + row.charge, 0n));
      all.push(...own);
    }
    expect(all).toHaveLength(plan.length);
    const bobTable = all.find((row) => row.customer_id === 'bob' && row.model === 'gpt-3.5-turbo')!;
    expect(bobTable.charge).not.toBe(bobTable.cost);

    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const report = await api<{ key: string; cost: number; charge: number; margin: number; spend: number; requests: number }[]>(
      base, 'GET', `/spend/report?start_date=${from}&end_date=${to}&group_by=customer`,
    );
    expect(report.status).toBe(200);
    const sums = (user: string) => {
      const own = all.filter((row) => row.customer_id === user);
      const cost = own.reduce((sum, row) => sum + row.cost, 0n);
      const charge = own.reduce((sum, row) => sum + row.charge, 0n);
      return { cost, charge, margin: charge - cost, requests: own.length };
    };
    const graph = await graphql<{ spendReport: { key: string; cost: number; charge: number; margin: number; spend: number }[] }>(
      base,
      'query($from: DateTimeISO!, $to: DateTimeISO!) { spendReport(from: $from, to: $to, groupBy: customer) { key cost charge margin spend } }',
      { from, to },
    );
    expect(graph.errors).toBeUndefined();
    for (const user of ['alice', 'bob', 'carol']) {
      const expected = sums(user);
      for (const row of [report.body.find((r) => r.key === user)!, graph.data!.spendReport.find((r) => r.key === user)!]) {
        expect(dollarsToPico(row.cost)).toBe(expected.cost);
        expect(dollarsToPico(row.charge)).toBe(expected.charge);
        expect(dollarsToPico(row.margin)).toBe(expected.margin);
        expect(dollarsToPico(row.spend)).toBe(expected.charge);
      }
      expect(report.body.find((r) => r.key === user)!.requests).toBe(expected.requests);
    }
    expect(sums('alice').margin).toBe(sums('alice').charge / 5n); // 1.25× → margin is 20% of the charge
    expect(sums('carol').margin).toBe(0n);

    // Ledger rows over REST and GraphQL carry both.
    const logs = await api<{ request_id: string; spend: number; cost: number; charge: number }[]>(base, 'GET', '/spend/logs?end_user=alice');
    for (const log of logs.body) {
      const row = all.find((r) => r.request_id === log.request_id)!;
      expect([dollarsToPico(log.cost), dollarsToPico(log.charge), dollarsToPico(log.spend)]).toEqual([row.cost, row.charge, row.charge]);
    }
    const graphLogs = await graphql<{ spendLogs: { nodes: { requestId: string; cost: number; charge: number }[] } }>(base, '{ spendLogs(customerId: "bob") { nodes { requestId cost charge } } }');
    for (const log of graphLogs.data!.spendLogs.nodes) {
      const row = all.find((r) => r.request_id === log.requestId)!;
      expect([dollarsToPico(log.cost), dollarsToPico(log.charge)]).toEqual([row.cost, row.charge]);
    }
  });

  it('writes monthly statements (JSON and CSV) that sum to the ledger', async () => {
    const period = new Date().toISOString().slice(0, 7);
    for (const user of ['alice', 'bob']) {
      const own = await rows(user);
      const json = await api<{
        end_user_id: string;
        lines: { day: string; model: string; requests: number; prompt_tokens: number; completion_tokens: number; cost: string; charge: string; margin: string }[];
        totals: { requests: number; prompt_tokens: number; completion_tokens: number; cost: string; charge: string; margin: string };
      }>(base, 'GET', `/customer/statement?end_user_id=${user}&period=${period}`);
      expect(json.status).toBe(200);
      const { lines, totals } = json.body;
      const cost = own.reduce((sum, row) => sum + row.cost, 0n);
      const charge = own.reduce((sum, row) => sum + row.charge, 0n);
      expect([dollarsToPico(totals.cost), dollarsToPico(totals.charge), dollarsToPico(totals.margin)]).toEqual([cost, charge, charge - cost]);
      expect(totals.requests).toBe(own.length);
      expect(totals.prompt_tokens).toBe(own.reduce((sum, row) => sum + row.prompt_tokens, 0));
      expect(lines.reduce((sum, line) => sum + dollarsToPico(line.charge), 0n)).toBe(charge);
      for (const model of new Set(own.map((row) => row.model))) {
        const line = lines.find((l) => l.model === model)!;
        expect(dollarsToPico(line.charge)).toBe(own.filter((row) => row.model === model).reduce((sum, row) => sum + row.charge, 0n));
      }
      const csv = await fetch(`${base}/customer/statement?end_user_id=${user}&period=${period}&format=csv`, { headers: { authorization: 'Bearer sk-1234' } });
      expect(csv.headers.get('content-type')).toContain('text/csv');
      expect(csv.headers.get('content-disposition')).toContain(`statement-${user}-${period}.csv`);
      const table = (await csv.text()).trim().split('\r\n').map((line) => line.split(','));
      expect(table[0]).toEqual(['day', 'model', 'requests', 'prompt_tokens', 'completion_tokens', 'cached_prompt_tokens', 'cost_usd', 'charge_usd', 'credits_used_usd']);
      expect(table.slice(1, -1).map((r) => [r[0], r[1], Number(r[2]), r[6], r[7]])).toEqual(lines.map((l) => [l.day, l.model, l.requests, l.cost, l.charge]));
      expect(table.at(-1)).toEqual(['total', '', String(totals.requests), String(totals.prompt_tokens), String(totals.completion_tokens), '0', totals.cost, totals.charge, '0']);
    }
    const empty = await api<{ lines: unknown[]; totals: { charge: string } }>(base, 'GET', '/customer/statement?end_user_id=alice&period=2020-02');
    expect(empty.body).toMatchObject({ lines: [], totals: { charge: '0' } });
    expect((await api(base, 'GET', `/customer/statement?end_user_id=alice&period=${period.replace('-', '/')}`)).status).toBe(400);
    expect((await api(base, 'GET', '/customer/statement?end_user_id=alice&period=2026-13')).status).toBe(400);
    expect((await api(base, 'GET', `/customer/statement?end_user_id=alice&period=${period}&format=pdf`)).status).toBe(400);
    expect((await api(base, 'GET', `/customer/statement?end_user_id=nobody&period=${period}`)).status).toBe(404);
  });

  it('holds a customer to its budget in charges, not in provider cost', async () => {
    const maxBudget = 0.0001;
    const created = await graphql<{ createBudget: { priceMultiplier: number } }>(
      base,
      'mutation { createBudget(input: { id: "double", priceMultiplier: 2, maxBudget: 0.0001 }) { priceMultiplier } }',
    );
    expect(created.data?.createBudget.priceMultiplier).toBe(2);
    expect((await api(base, 'POST', '/customer/new', { user_id: 'dora', budget_id: 'double' })).status).toBe(200);
    const client = openaiClient(`${base}/v1`);
    let refusal: { status?: number; message?: string } | null = null;
    for (let i = 0; i < 50 && !refusal; i++) {
      try {
        await client.chat.completions.create({ model: 'mistral', user: 'dora', max_tokens: 20, messages: [{ role: 'user', content: 'what time is it' }] });
      } catch (error) {
        refusal = error as { status?: number; message?: string };
      }
    }
    expect(refusal?.status).toBe(402);
    const own = await rows('dora');
    const cost = own.reduce((sum, row) => sum + row.cost, 0n);
    const charge = own.reduce((sum, row) => sum + row.charge, 0n);
    expect(charge).toBe(cost * 2n);
    expect(charge).toBeGreaterThanOrEqual(dollarsToPico(maxBudget));
    expect(cost).toBeLessThan(dollarsToPico(maxBudget)); // by cost alone it would still be admitted
    expect(refusal?.message).toContain(`Spend: $${Number(charge) / 1e12}`);
  });

  it('refuses bad prices with a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ price_multiplier: -1 }, 'price_multiplier'],
      [{ price_multiplier: 'lots' }, 'price_multiplier'],
      [{ price_multiplier: 5000 }, 'price_multiplier'],
      [{ model_prices: { m: { input_cost_per_token: 1 } } }, 'model_prices.m.output_cost_per_token'],
      [{ model_prices: { m: { input_cost_per_token: 1, output_cost_per_token: 1, input_price: 2 } } }, 'model_prices.m.input_price'],
      [{ model_prices: [1] }, 'model_prices'],
    ];
    for (const [body, field] of cases) {
      const response = await api<{ detail: { error: string } } | Record<string, unknown>>(base, 'POST', '/budget/new', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(response.body)).toContain(field);
    }
    const graph = await graphql(base, 'mutation { createBudget(input: { priceMultiplier: -2 }) { id } }');
    expect(graph.errors?.[0]?.message).toContain('priceMultiplier');
  });
});
