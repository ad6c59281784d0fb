/**
 * @module Responses Tollgate produced on translated deployments, kept so a later request can
 * continue them (`previous_response_id`, `item_reference`) and `GET /v1/responses/{id}` can
 * return them. In PostgreSQL (tables `stored_responses`, `stored_response_items`), for the key
 * that created them only, for `tollgate.response_retention_days` (default 30, OpenAI's).
 * Native deployments keep their own state upstream; `store: false` keeps nothing.
 */
import type { MikroORM } from '@mikro-orm/postgresql';

type Json = Record<string, unknown>;

export interface StoredResponse {
  id: string;
  keyHash: string;
  /** The response object, as the client received it. */
  response: Json;
  /** The whole conversation up to and including this response: input items, then output items. */
  items: Json[];
}

export interface ResponseStore {
  get(id: string, keyHash: string): Promise<StoredResponse | null>;
  /** Stored items by id (the outputs of earlier responses), for `item_reference` inputs. */
  items(ids: string[], keyHash: string): Promise<Map<string, Json>>;
  put(stored: StoredResponse): Promise<void>;
}

/** Expired rows are deleted once every this many stores (no timer, no sweep on reads). */
const PURGE_EVERY = 200;

export class SqlResponseStore implements ResponseStore {
  private puts = 0;

  constructor(
    private readonly orm: MikroORM,
    private readonly retentionMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get knex() {
    return this.orm.em.getConnection().getKnex();
  }

  async get(id: string, keyHash: string): Promise<StoredResponse | null> {
    const result = await this.knex.raw(`select response, items from stored_responses where id = ? and api_key_hash = ? and expires_at > ?`, [id, keyHash, this.now().toISOString()]);
    const row = (result.rows as { response: Json; items: Json[] }[])[0];
    return row ? { id, keyHash, response: row.response, items: row.items } : null;
  }

  async items(ids: string[], keyHash: string): Promise<Map<string, Json>> {
    const found = new Map<string, Json>();
    if (!ids.length) return found;
    const result = await this.knex.raw(
      `select item_id, item from stored_response_items where api_key_hash = ? and expires_at > ? and item_id in (select jsonb_array_elements_text(?::jsonb))`,
      [keyHash, this.now().toISOString(), JSON.stringify(ids)],
    );
    for (const row of result.rows as { item_id: string; item: Json }[]) found.set(row.item_id, row.item);
    return found;
  }

  async put(stored: StoredResponse): Promise<void> {
    const now = this.now();
    const expiresAt = new Date(now.getTime() + this.retentionMs).toISOString();
    const output = ((stored.response.output as Json[] | undefined) ?? []).filter((item) => typeof item.id === 'string');
    await this.knex.transaction(async (trx) => {
      await trx.raw(
        `insert into stored_responses (id, api_key_hash, response, items, created_at, expires_at) values (?, ?, ?::jsonb, ?::jsonb, ?, ?) on conflict (id) do nothing`,
        [stored.id, stored.keyHash, JSON.stringify(stored.response), JSON.stringify(stored.items), now.toISOString(), expiresAt],
      );
      if (output.length) {
        await trx.raw(
          `insert into stored_response_items (item_id, api_key_hash, response_id, item, expires_at)
           select x.item ->> 'id', ?, ?, x.item, ? from jsonb_array_elements(?::jsonb) as x(item)
           on conflict (item_id, api_key_hash) do nothing`,
          [stored.keyHash, stored.id, expiresAt, JSON.stringify(output)],
        );
      }
    });
    if (++this.puts % PURGE_EVERY === 0) await this.purgeExpired();
  }

  async purgeExpired(): Promise<void> {
    const now = this.now().toISOString();
    await this.knex.raw(`delete from stored_responses where expires_at <= ?`, [now]);
    await this.knex.raw(`delete from stored_response_items where expires_at <= ?`, [now]);
  }
}
