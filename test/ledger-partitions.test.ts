/**
 * The ledger at scale: daily partitions (created ahead, created on demand, dropped past
 * `ledger_retention_days`), hourly rollups kept equal to the rows across a partition
 * boundary, a retried batch and a retention drop, reports that read only rollups, keyset
 * pages of /spend/logs across partitions, and the migration that converts an existing
 * ledger (rows kept), on PGlite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '@mikro-orm/postgresql';
import { freshDataDir, graphql, startTestGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, type TestDatabase } from './support/postgres';
import type { RunningGateway } from '../src/server/gateway';
import type { SpendRecord } from '../src/ledger/types';
import { loadMigrator, openDatabase, runMigrations } from '../src/store/database';
import { dayStartMs, partitionName } from '../src/ledger/partitions';
import { reportQuery } from '../src/services/spend';
import { dollarsToPico } from '../src/shared/money';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const TODAY = dayStartMs(Date.now());
/** Yesterday 23:00 to today 01:00 UTC: a partition boundary in the middle. */
const BOUNDARY = TODAY;
const OLD_DAY = TODAY - 40 * DAY;

let sequence = 0;
function record(customerId: string, model: string, atMs: number, costPico: bigint): SpendRecord {
  return {
    requestId: `req-${++sequence}-${atMs}`,
    customerId,
    apiKeyId: null,
    keyAlias: null,
    model,
    deploymentId: `${model}#0`,
    provider: 'mock',
    endpoint: 'chat',
    promptTokens: 10 + sequence,
    completionTokens: 20 + sequence,
    cachedPromptTokens: sequence % 3,
    cacheWriteTokens: 0,
    costPico,
    // A tier's price of 1.25× the cost: rollups carry both, and reports show both.
    chargePico: costPico + costPico / 4n,
    costSource: 'provider',
    status: 'success',
    periodStartMs: 0,
    counters: [],
    createdAtMs: atMs,
  };
}

function knexOf(gateway: RunningGateway): Knex {
  return gateway.database.orm.em.getConnection().getKnex();
}

type Sums = Record<string, { spend: string; charge: string; requests: string; prompt: string; completion: string; cached: string }>;

/** Per hour × customer × model: the ledger rows' sums and the rollups, for the test customers. */
async function rowsAndRollups(knex: Knex): Promise<{ rows: Sums; rollups: Sums }> {
  const toSums = (result: { rows: Record<string, string>[] }): Sums =>
    Object.fromEntries(result.rows.map((r) => [`${new Date(r.hour!).toISOString()} ${r.customer_id} ${r.model}`, { spend: String(r.spend), charge: String(r.charge), requests: String(r.requests), prompt: String(r.prompt), completion: String(r.completion), cached: String(r.cached) }]));
  const rows = await knex.raw(
    `select date_trunc('hour', created_at, 'UTC') as hour, customer_id, model, sum(cost_pico)::text as spend, sum(charge_pico)::text as charge, count(*)::text as requests,
       sum(prompt_tokens)::text as prompt, sum(completion_tokens)::text as completion, sum(cached_prompt_tokens)::text as cached
     from spend_ledger where customer_id like 'roll-%' group by 1, 2, 3`,
  );
  const rollups = await knex.raw(
    `select hour, customer_id, model, spend_pico::text as spend, charge_pico::text as charge, requests::text as requests, prompt_tokens::text as prompt,
       completion_tokens::text as completion, cached_prompt_tokens::text as cached
     from spend_rollups where customer_id like 'roll-%'`,
  );
  return { rows: toSums(rows), rollups: toSums(rollups) };
}

/** Per UTC day × customer × model: the ledger rows' sums and the daily rollups, for the test customers. */
async function rowsAndDailyRollups(knex: Knex): Promise<{ rows: Sums; rollups: Sums }> {
  const toSums = (result: { rows: Record<string, string>[] }): Sums =>
    Object.fromEntries(result.rows.map((r) => [`${new Date(r.day!).toISOString()} ${r.customer_id} ${r.model}`, { spend: String(r.spend), charge: String(r.charge), requests: String(r.requests), prompt: String(r.prompt), completion: String(r.completion), cached: String(r.cached) }]));
  const rows = await knex.raw(
    `select date_trunc('day', created_at, 'UTC') as day, customer_id, model, sum(cost_pico)::text as spend, sum(charge_pico)::text as charge, count(*)::text as requests,
       sum(prompt_tokens)::text as prompt, sum(completion_tokens)::text as completion, sum(cached_prompt_tokens)::text as cached
     from spend_ledger where customer_id like 'roll-%' group by 1, 2, 3`,
  );
  const rollups = await knex.raw(
    `select day, customer_id, model, spend_pico::text as spend, charge_pico::text as charge, requests::text as requests, prompt_tokens::text as prompt,
       completion_tokens::text as completion, cached_prompt_tokens::text as cached
     from spend_rollups_daily where customer_id like 'roll-%'`,
  );
  return { rows: toSums(rows), rollups: toSums(rollups) };
}

/** Per hour × model over all customers: the ledger rows' sums and the per-model rollups. */
async function modelRowsAndRollups(knex: Knex): Promise<{ rows: Record<string, string>; rollups: Record<string, string> }> {
  const toMap = (result: { rows: Record<string, string>[] }) => Object.fromEntries(result.rows.map((r) => [`${new Date(r.hour!).toISOString()} ${r.model}`, `${r.spend}/${r.charge}/${r.requests}/${r.tokens}`]));
  const rows = await knex.raw(
    `select date_trunc('hour', created_at, 'UTC') as hour, model, sum(cost_pico)::text as spend, sum(charge_pico)::text as charge, count(*)::text as requests, sum(prompt_tokens + completion_tokens)::text as tokens
     from spend_ledger group by 1, 2`,
  );
  const rollups = await knex.raw(`select hour, model, spend_pico::text as spend, charge_pico::text as charge, requests::text as requests, (prompt_tokens + completion_tokens)::text as tokens from spend_rollups_by_model`);
  return { rows: toMap(rows), rollups: toMap(rollups) };
}

async function explain(knex: Knex, query: { sql: string; params: unknown[] }): Promise<string> {
  const result = await knex.raw(`explain ${query.sql}`, query.params as never[]);
  return (result.rows as Record<string, string>[]).map((row) => row['QUERY PLAN']).join('\n');
}

describe.each(['pglite', 'postgresql'] as const)('the partitioned ledger on %s', (store) => {
  let database: TestDatabase | null = null;
  let gateway: RunningGateway;
  const records: SpendRecord[] = [];

  beforeAll(async () => {
    if (store === 'postgresql') database = await createTestDatabase();
    gateway = await startTestGateway({ databaseUrl: database?.url, yaml: testConfigYaml({ extra: 'tollgate:\n  ledger_retention_days: 30\n' }) });
    records.push(
      record('roll-a', 'm1', BOUNDARY - HOUR + 1, 1_000_001n),
      record('roll-a', 'm1', BOUNDARY - 1, 2_000_003n),
      record('roll-a', 'm1', BOUNDARY, 4_000_005n),
      record('roll-a', 'm2', BOUNDARY + 1, 8_000_007n),
      record('roll-b', 'm1', BOUNDARY - 30 * 60_000, 16_000_009n),
      record('roll-b', 'm1', BOUNDARY + HOUR + 5, 32_000_011n),
      record('roll-a', 'm1', OLD_DAY + 5 * HOUR, 64_000_013n),
    );
    for (const r of records) gateway.ledger.record(r);
    await gateway.ledger.flush();
  });
  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
  });

  it('creates the partitions ahead, and a missing one on demand, and rows land in their day', async () => {
    const knex = knexOf(gateway);
    const days = await gateway.partitions.existingDays();
    for (let ahead = 0; ahead <= 3; ahead++) expect(days.has(TODAY + ahead * DAY)).toBe(true);
    expect(days.has(TODAY - DAY)).toBe(true); // created by the writer for yesterday's rows
    const placed = await knex.raw(`select tableoid::regclass::text as partition, count(*)::int as n from spend_ledger where customer_id like 'roll-%' group by 1`);
    const byPartition = Object.fromEntries((placed.rows as { partition: string; n: number }[]).map((row) => [row.partition.replace(/"/g, ''), row.n]));
    expect(byPartition).toEqual({ [partitionName(TODAY - DAY)]: 3, [partitionName(TODAY)]: 3, [partitionName(OLD_DAY)]: 1 });
  });

  it('keeps each rollup equal to the sum of its rows across the boundary, and a retried batch counts once', async () => {
    const knex = knexOf(gateway);
    const before = await rowsAndRollups(knex);
    expect(Object.keys(before.rows)).toHaveLength(6);
    expect(before.rollups).toEqual(before.rows);
    const byModel = await modelRowsAndRollups(knex);
    expect(Object.keys(byModel.rows)).toHaveLength(5);
    expect(byModel.rollups).toEqual(byModel.rows);
    // Daily: yesterday's two rows of roll-a/m1 in one day, today's in another (the boundary).
    const daily = await rowsAndDailyRollups(knex);
    expect(Object.keys(daily.rows)).toHaveLength(6);
    expect(daily.rows[`${new Date(BOUNDARY - DAY).toISOString()} roll-a m1`]?.requests).toBe('2');
    expect(daily.rollups).toEqual(daily.rows);
    // The same records again (a batch retried after a lost commit, a journal replayed).
    for (const r of records) gateway.ledger.record(r);
    await gateway.ledger.flush();
    const after = await rowsAndRollups(knex);
    expect(after.rows).toEqual(before.rows);
    expect(after.rollups).toEqual(before.rows);
    expect(await modelRowsAndRollups(knex)).toEqual(byModel);
    expect(await rowsAndDailyRollups(knex)).toEqual(daily);
  });

  it('answers spendReport across the boundary from the rollups, exactly, and the plan never reads the ledger', async () => {
    const from = new Date(BOUNDARY - DAY);
    const to = new Date(BOUNDARY + DAY);
    const report = await graphql<{ spendReport: { key: string; cost: number; charge: number; requests: number }[] }>(
      gateway.url,
      `query($from: DateTimeISO!, $to: DateTimeISO!) { spendReport(from: $from, to: $to, groupBy: day, customerId: "roll-a") { key cost charge requests } }`,
      { from: from.toISOString(), to: to.toISOString() },
    );
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    // Cost from the provider's prices; charge at the tier's 1.25× (rounded per request, as charged).
    expect(report.data!.spendReport.map((row) => [row.key, dollarsToPico(row.cost), dollarsToPico(row.charge), row.requests])).toEqual([
      [day(BOUNDARY - DAY), 3_000_004n, 3_750_004n, 2],
      [day(BOUNDARY), 12_000_012n, 15_000_014n, 2],
    ]);
    const knex = knexOf(gateway);
    for (const groupBy of ['day', 'customer', 'model'] as const) {
      for (const customer of [null, 'roll-a']) {
        const plan = await explain(knex, reportQuery(new Date(TODAY - 90 * DAY), new Date(TODAY + DAY), groupBy, customer, 'UTC'));
        // Over all customers by day or model: the per-model rollups, no row per customer;
        // per customer over whole UTC days: the daily rollups, and nothing else.
        if (customer === null && groupBy !== 'customer') expect(plan).toMatch(/ on spend_rollups_by_model/);
        else {
          expect(plan).toMatch(/ on spend_rollups_daily/);
          expect(plan).not.toMatch(/ on spend_rollups /); // whole days only: no hour read
        }
        expect(plan).not.toMatch(/spend_ledger/);
      }
    }
    // Days of a zone other than UTC split UTC days: hourly rollups; by customer, any zone reads days.
    const paris = await explain(knex, reportQuery(new Date(TODAY - 90 * DAY), new Date(TODAY + DAY), 'day', 'roll-a', 'Europe/Paris'));
    expect(paris).toMatch(/ on spend_rollups /);
    expect(paris).not.toMatch(/spend_rollups_daily|spend_ledger/);
    // Partial days at the ends: hourly rollups for those hours, daily for the days between.
    const ragged = await explain(knex, reportQuery(new Date(TODAY - 90 * DAY + 5 * HOUR), new Date(TODAY - 2 * HOUR), 'customer', null, 'UTC'));
    expect(ragged).toMatch(/ on spend_rollups_daily/);
    expect(ragged).toMatch(/ on spend_rollups /);
    expect(ragged).not.toMatch(/spend_ledger/);
    // Exact across the grains: a range from 23:00 yesterday (hourly) through whole days (daily)
    // to 01:00 today+1 (hourly) sums to the rows.
    const mixed = reportQuery(new Date(BOUNDARY - HOUR), new Date(BOUNDARY + DAY + HOUR), 'customer', null, 'UTC');
    expect(await explain(knex, mixed)).toMatch(/ on spend_rollups_daily/);
    const mixedRows = (await knex.raw(mixed.sql, mixed.params as never[])).rows as { key: string; cost: string; requests: string }[];
    const ledgerRows = (await knex.raw(`select customer_id as key, sum(cost_pico)::text as cost, count(*)::text as requests from spend_ledger where customer_id like 'roll-%' and created_at >= ? and created_at < ? group by 1`, [new Date(BOUNDARY - HOUR).toISOString(), new Date(BOUNDARY + DAY + HOUR).toISOString()])).rows as { key: string; cost: string; requests: string }[];
    expect(Object.fromEntries(mixedRows.filter((r) => r.key.startsWith('roll-')).map((r) => [r.key, `${r.cost}/${r.requests}`]))).toEqual(Object.fromEntries(ledgerRows.map((r) => [r.key, `${r.cost}/${r.requests}`])));
    const allCustomers = await graphql<{ spendReport: { key: string; cost: number; requests: number }[] }>(
      gateway.url,
      `query($from: DateTimeISO!, $to: DateTimeISO!) { spendReport(from: $from, to: $to, groupBy: day) { key cost requests } }`,
      { from: from.toISOString(), to: to.toISOString() },
    );
    expect(allCustomers.data!.spendReport.map((row) => [row.key, dollarsToPico(row.cost), row.requests])).toEqual([
      [day(BOUNDARY - DAY), 19_000_013n, 3],
      [day(BOUNDARY), 44_000_023n, 3],
    ]);
    // A range that does not start on an hour reads the ledger for that partial hour only.
    const partial = reportQuery(new Date(BOUNDARY - 30 * 60_000 - 1), to, 'customer', null, 'UTC');
    const rows = (await knex.raw(partial.sql, partial.params as never[])).rows as { key: string; cost: string }[];
    expect(rows.find((row) => row.key === 'roll-b')?.cost).toBe('48000020');
    expect(rows.find((row) => row.key === 'roll-a')?.cost).toBe('14000015'); // not the row at 23:00:00.001, before the range start
  });

  it('pages /spend/logs by keyset across partitions: every row once, newest first', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const response: Response = await fetch(`${gateway.url}/spend/logs?end_user=roll-a&limit=2${cursor ? `&after=${cursor}` : ''}`, { headers: { authorization: 'Bearer sk-1234' } });
      expect(response.status).toBe(200);
      seen.push(...((await response.json()) as { request_id: string }[]).map((row) => row.request_id));
      cursor = response.headers.get('x-next-cursor');
    } while (cursor);
    const expected = records.filter((r) => r.customerId === 'roll-a').sort((a, b) => b.createdAtMs - a.createdAtMs).map((r) => r.requestId);
    expect(seen).toEqual(expected);
  });

  it('drops partitions past the retention; rollups still equal the rows kept, and old reports still work', async () => {
    const knex = knexOf(gateway);
    const result = await gateway.partitions.maintain();
    expect(result.dropped).toEqual([partitionName(OLD_DAY)]);
    expect((await gateway.partitions.existingDays()).has(OLD_DAY)).toBe(false);
    const { rows, rollups } = await rowsAndRollups(knex);
    const oldHour = `${new Date(OLD_DAY + 5 * HOUR).toISOString()} roll-a m1`;
    expect(rows[oldHour]).toBeUndefined();
    expect(rollups[oldHour]?.spend).toBe('64000013'); // kept: history beyond the raw retention
    delete rollups[oldHour];
    expect(rollups).toEqual(rows);
    const byModel = await modelRowsAndRollups(knex);
    const oldModelHour = `${new Date(OLD_DAY + 5 * HOUR).toISOString()} m1`;
    expect(byModel.rollups[oldModelHour]).toBeDefined();
    delete byModel.rollups[oldModelHour];
    expect(byModel.rollups).toEqual(byModel.rows);
    const daily = await rowsAndDailyRollups(knex);
    const oldDay = `${new Date(OLD_DAY).toISOString()} roll-a m1`;
    expect(daily.rows[oldDay]).toBeUndefined();
    expect(daily.rollups[oldDay]?.spend).toBe('64000013');
    delete daily.rollups[oldDay];
    expect(daily.rollups).toEqual(daily.rows);
    const report = await graphql<{ spendReport: { key: string; cost: number }[] }>(
      gateway.url,
      `query($from: DateTimeISO!, $to: DateTimeISO!) { spendReport(from: $from, to: $to, groupBy: customer) { key cost } }`,
      { from: new Date(OLD_DAY).toISOString(), to: new Date(OLD_DAY + DAY).toISOString() },
    );
    expect(report.data!.spendReport.map((row) => [row.key, dollarsToPico(row.cost)])).toEqual([['roll-a', 64_000_013n]]);
    // A statement of that month still reads it (from the rollups) after its rows are gone.
    const period = new Date(OLD_DAY).toISOString().slice(0, 7);
    await fetch(`${gateway.url}/customer/new`, { method: 'POST', headers: { authorization: 'Bearer sk-1234', 'content-type': 'application/json' }, body: JSON.stringify({ user_id: 'roll-a' }) });
    const statement = await fetch(`${gateway.url}/customer/statement?end_user_id=roll-a&period=${period}`, { headers: { authorization: 'Bearer sk-1234' } });
    expect(statement.status).toBe(200);
    const lines = ((await statement.json()) as { lines: { day: string; model: string; requests: number; cost: string }[] }).lines;
    expect(lines.find((line) => line.day === new Date(OLD_DAY).toISOString().slice(0, 10))).toMatchObject({ model: 'm1', requests: 1, cost: '0.000064000013' });
  });
});

describe.each(['pglite', 'postgresql'] as const)('the migration to the partitioned ledger on %s', (store) => {
  let database: TestDatabase | null = null;
  beforeAll(async () => {
    if (store === 'postgresql') database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('keeps every existing row, in a partition of its day, and builds the rollups from them', async () => {
    const db = await openDatabase({ databaseUrl: database?.url, dataDir: freshDataDir(), migrate: false });
    try {
      await (await loadMigrator(db.orm)).up({ to: 'Migration20261128170416' }); // the ledger before partitioning
      const knex = db.orm.em.getConnection().getKnex();
      const old = [
        ['old-1', 'legacy', 'm1', '2026-11-28T23:59:59.999Z', 5],
        ['old-2', 'legacy', 'm1', '2026-11-29T00:00:00.000Z', 7],
        ['old-3', null, 'm2', '2026-11-29T10:15:00.000Z', 11],
      ] as const;
      for (const [id, customer, model, at, cost] of old) {
        await knex.raw(
          `insert into spend_ledger (request_id, customer_id, model, deployment_id, provider, endpoint, prompt_tokens, completion_tokens, cost_pico, cost_source, status, period_start, created_at)
           values (?, ?, ?, 'd', 'mock', 'chat', 1, 2, ?, 'provider', 'success', ?, ?)`,
          [id, customer, model, cost, at, at],
        );
      }
      await runMigrations(db.orm);
      const rows = await knex.raw(`select request_id, tableoid::regclass::text as partition, cost_pico::int as cost from spend_ledger order by request_id`);
      expect((rows.rows as { request_id: string; partition: string; cost: number }[]).map((r) => [r.request_id, r.partition.replace(/"/g, ''), r.cost])).toEqual([
        ['old-1', 'spend_ledger_p20261128', 5],
        ['old-2', 'spend_ledger_p20261129', 7],
        ['old-3', 'spend_ledger_p20261129', 11],
      ]);
      const rollups = await knex.raw(`select hour, customer_id, model, spend_pico::int as spend, requests::int as requests from spend_rollups order by hour`);
      expect((rollups.rows as { hour: string; customer_id: string; model: string; spend: number; requests: number }[]).map((r) => [new Date(r.hour).toISOString(), r.customer_id, r.model, r.spend, r.requests])).toEqual([
        ['2026-11-28T23:00:00.000Z', 'legacy', 'm1', 5, 1],
        ['2026-11-29T00:00:00.000Z', 'legacy', 'm1', 7, 1],
        ['2026-11-29T10:00:00.000Z', '', 'm2', 11, 1],
      ]);
      const byModel = await knex.raw(`select model, spend_pico::int as spend from spend_rollups_by_model order by hour`);
      expect((byModel.rows as { model: string; spend: number }[]).map((r) => [r.model, r.spend])).toEqual([['m1', 5], ['m1', 7], ['m2', 11]]);
      // Still idempotent by request: the same row again is not a second charge.
      const again = await knex.raw(
        `insert into spend_ledger (request_id, customer_id, model, deployment_id, provider, endpoint, prompt_tokens, completion_tokens, cost_pico, cost_source, status, period_start, created_at)
         values ('old-2', 'legacy', 'm1', 'd', 'mock', 'chat', 1, 2, 7, 'provider', 'success', ?, ?) on conflict (created_at, request_id) do nothing returning request_id`,
        ['2026-11-29T00:00:00.000Z', '2026-11-29T00:00:00.000Z'],
      );
      expect(again.rows).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
