import { Migration } from '@mikro-orm/migrations';

/** Responses Tollgate produced on translated deployments, for previous_response_id / item_reference (additive). */
export class Migration20261201093000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table if not exists "stored_responses" ("id" varchar(64) not null, "api_key_hash" varchar(128) not null, "response" jsonb not null, "items" jsonb not null, "created_at" timestamptz not null, "expires_at" timestamptz not null, constraint "stored_responses_pkey" primary key ("id"));`);
    this.addSql(`create index if not exists "stored_responses_expires_at_index" on "stored_responses" ("expires_at");`);
    this.addSql(`create table if not exists "stored_response_items" ("item_id" varchar(64) not null, "api_key_hash" varchar(128) not null, "response_id" varchar(64) not null, "item" jsonb not null, "expires_at" timestamptz not null, constraint "stored_response_items_pkey" primary key ("item_id", "api_key_hash"));`);
    this.addSql(`create index if not exists "stored_response_items_expires_at_index" on "stored_response_items" ("expires_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "stored_response_items" cascade;`);
    this.addSql(`drop table if exists "stored_responses" cascade;`);
  }

}
