/**
 * Keys are never named by a hash of them: spend logs (REST and GraphQL), webhook payloads and
 * every database column carry the key's id (`master` for the master key), and api_keys holds
 * an HMAC keyed with the server's secret, not the plain sha256 a weak key is guessed from.
 * A database written before (plain hashes in the ledger, webhook bodies and key rows) is
 * converted by the migration and on each legacy key's next use, which keeps working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomUUID } from 'node:crypto';
import { api, graphql, MASTER_KEY, startTestGateway } from './support/gateway';
import { createTestDatabase, queryDatabase, type TestDatabase } from './support/postgres';
import { WebhookReceiver } from './support/webhook-receiver';
import { webhookYaml } from './support/webhooks';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const LEGACY_KEY = 'sk-legacy-weak-1';

let database: TestDatabase;
const receiver = new WebhookReceiver();

beforeAll(async () => {
  database = await createTestDatabase();
  await receiver.start();
});

afterAll(async () => {
  await receiver.stop();
  await database?.drop();
});

async function start() {
  return startTestGateway({ yaml: webhookYaml({}), databaseUrl: database.url, env: { WEBHOOK_URL: receiver.url } });
}

async function chat(base: string, key: string, user: string) {
  const response = await api(base, 'POST', '/chat/completions', { model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hi' }] }, key);
  expect(response.status).toBe(200);
}

/** Every row of the tables that could hold a key, as text. */
async function databaseText(): Promise<string> {
  const tables = ['spend_ledger', 'api_keys', 'webhook_events', 'webhook_deliveries', 'customers'];
  const parts = await Promise.all(tables.map((table) => queryDatabase<{ row: string }>(database.url, `select row_to_json(t)::text as row from ${table} t`)));
  return parts.flat().map((r) => r.row).join('\n');
}

describe('key ids instead of key hashes', () => {
  let virtualKey: string;
  let virtualId: string;

  it('names keys by id in spend logs, GraphQL, webhooks and the database', async () => {
    const gateway = await start();
    try {
      const generated = await api<{ key: string; token: string }>(gateway.url, 'POST', '/key/generate', { key_alias: 'app' });
      virtualKey = generated.body.key;
      virtualId = generated.body.token;
      await chat(gateway.url, MASTER_KEY, 'ids-master');
      await chat(gateway.url, virtualKey, 'ids-virtual');
      await gateway.ledger.flush();
      await expect.poll(() => receiver.received.filter((e) => e.payload.event === 'spend_tracked' || e.payload.token !== undefined).length, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);

      const logs = await api<{ api_key: string; end_user: string }[]>(gateway.url, 'GET', '/spend/logs');
      const byUser = Object.fromEntries(logs.body.map((row) => [row.end_user, row.api_key]));
      expect(byUser['ids-master']).toBe('master');
      expect(byUser['ids-virtual']).toBe(virtualId);
      const tokens = receiver.received.map((e) => e.payload.token);
      expect(tokens).toEqual(expect.arrayContaining(['master', virtualId]));

      const gql = await graphql(gateway.url, '{ spendLogs { nodes { requestId keyAlias customerId } } }');
      const everything = [JSON.stringify(logs.body), JSON.stringify(gql), ...receiver.received.map((e) => e.body), await databaseText()].join('\n');
      for (const key of [MASTER_KEY, virtualKey]) {
        expect(everything).not.toContain(sha256(key));
        expect(everything).not.toContain(key);
      }
    } finally {
      await gateway.stop();
    }
  });

  it('converts a database written with plain hashes, and legacy keys keep working', async () => {
    // What the previous version left: plain sha256 in the ledger, the webhook bodies and a key row.
    const legacyId = randomUUID();
    await queryDatabase(database.url, `insert into api_keys (id, key_hash, key_prefix, key_alias, scope, created_at) values ($1, $2, 'sk-legacy', 'old', 'inference', now())`, [legacyId, sha256(LEGACY_KEY)]);
    await queryDatabase(database.url, `update api_keys set key_hash = $1 where id = $2`, [sha256(virtualKey), virtualId]);
    await queryDatabase(database.url, `update spend_ledger set api_key_hash = case when api_key_id = 'master' then $1 else $2 end`, [sha256(MASTER_KEY), sha256(virtualKey)]);
    await queryDatabase(database.url, `update webhook_events set body = replace(replace(body, '"token":"master"', '"token":"' || $1 || '"'), '"token":"' || $3 || '"', '"token":"' || $2 || '"')`, [sha256(MASTER_KEY), sha256(virtualKey), virtualId]);
    await queryDatabase(database.url, `alter table spend_ledger drop column api_key_id`);
    await queryDatabase(database.url, `delete from tollgate_migrations where name = 'Migration20261201101000'`);
    expect(await databaseText()).toContain(sha256(MASTER_KEY)); // the set-up really is the old shape

    const gateway = await start();
    try {
      const rows = await queryDatabase<{ customer_id: string; api_key_id: string; api_key_hash: string | null }>(database.url, 'select customer_id, api_key_id, api_key_hash from spend_ledger');
      expect(Object.fromEntries(rows.map((r) => [r.customer_id, r.api_key_id]))).toEqual({ 'ids-master': 'master', 'ids-virtual': virtualId });
      expect(rows.every((r) => r.api_key_hash === null)).toBe(true);

      await chat(gateway.url, LEGACY_KEY, 'ids-legacy'); // verified by its plain hash, then rewritten
      await expect.poll(async () => (await queryDatabase<{ key_hash: string }>(database.url, 'select key_hash from api_keys where id = $1', [legacyId]))[0]!.key_hash).not.toBe(sha256(LEGACY_KEY));
      await chat(gateway.url, LEGACY_KEY, 'ids-legacy'); // and by its keyed hash from then on
      await chat(gateway.url, virtualKey, 'ids-virtual');
      await expect.poll(async () => (await queryDatabase<{ key_hash: string }>(database.url, 'select key_hash from api_keys where id = $1', [virtualId]))[0]!.key_hash).not.toBe(sha256(virtualKey));
      await gateway.ledger.flush();
      const text = await databaseText();
      for (const key of [MASTER_KEY, virtualKey, LEGACY_KEY]) expect(text).not.toContain(sha256(key));
      const legacyRows = await queryDatabase<{ api_key_id: string }>(database.url, `select api_key_id from spend_ledger where customer_id = 'ids-legacy'`);
      expect(legacyRows.map((r) => r.api_key_id)).toEqual([legacyId, legacyId]);
    } finally {
      await gateway.stop();
    }
  });
});
