import { Migration } from '@mikro-orm/migrations';

export class Migration20261128164407 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "api_keys" ("id" varchar(64) not null, "key_hash" varchar(128) not null, "key_prefix" varchar(16) not null, "key_alias" varchar(256) null, "scope" varchar(16) not null, "created_at" timestamptz not null, "revoked_at" timestamptz null, constraint "api_keys_pkey" primary key ("id"));`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_key_hash_unique" unique ("key_hash");`);

    this.addSql(`create table "budgets" ("budget_id" varchar(256) not null, "max_budget_pico" bigint null, "soft_budget_pico" bigint null, "rpm_limit" bigint null, "tpm_limit" bigint null, "max_parallel_requests" int null, "budget_duration" varchar(32) null, "budget_reset_at" timestamptz null, "model_max_budget" jsonb null, "created_by" varchar(256) null, "updated_by" varchar(256) null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "budgets_pkey" primary key ("budget_id"));`);

    this.addSql(`create table "customers" ("user_id" varchar(256) not null, "alias" varchar(256) null, "blocked" boolean not null default false, "budget_id" varchar(256) null, "allowed_model_region" varchar(16) null, "default_model" varchar(256) null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "customers_pkey" primary key ("user_id"));`);
    this.addSql(`create index "customers_budget_id_index" on "customers" ("budget_id");`);

    this.addSql(`create table "spend_ledger" ("request_id" varchar(64) not null, "customer_id" varchar(256) null, "api_key_hash" varchar(128) null, "key_alias" varchar(256) null, "model" varchar(256) not null, "deployment_id" varchar(300) not null, "provider" varchar(64) not null, "endpoint" varchar(64) not null, "prompt_tokens" int not null, "completion_tokens" int not null, "cached_prompt_tokens" int not null default 0, "cache_write_tokens" int not null default 0, "cost_pico" bigint not null, "cost_source" varchar(16) not null, "status" varchar(16) not null, "period_start" timestamptz not null, "created_at" timestamptz not null, constraint "spend_ledger_pkey" primary key ("request_id"));`);
    this.addSql(`create index "spend_ledger_customer_id_created_at_index" on "spend_ledger" ("customer_id", "created_at");`);
    this.addSql(`create index "spend_ledger_created_at_index" on "spend_ledger" ("created_at");`);

    this.addSql(`create table "spend_counters" ("customer_id" varchar(256) not null, "scope" varchar(300) not null, "period_start" timestamptz not null, "spend_pico" bigint not null, "requests" bigint not null, "prompt_tokens" bigint not null, "completion_tokens" bigint not null, "updated_at" timestamptz not null, constraint "spend_counters_pkey" primary key ("customer_id", "scope", "period_start"));`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "api_keys" cascade;`);

    this.addSql(`drop table if exists "budgets" cascade;`);

    this.addSql(`drop table if exists "customers" cascade;`);

    this.addSql(`drop table if exists "spend_ledger" cascade;`);

    this.addSql(`drop table if exists "spend_counters" cascade;`);
  }

}
