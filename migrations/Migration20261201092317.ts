import { Migration } from '@mikro-orm/migrations';

/**
 * The ledger becomes a table partitioned by day of `created_at` (UTC), and hourly rollups per
 * customer × model (and per model alone) are added. Existing rows are kept: a partition is created for each day
 * that has rows, the rows are copied over, and the rollups are built from them. The primary
 * key becomes (created_at, request_id): a partitioned table's unique keys must contain the
 * partition key, and a request's record always carries the same created_at, so a retried
 * batch still conflicts with its first insert.
 */
export class Migration20261201092317 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "spend_ledger" rename to "spend_ledger_unpartitioned";`);
    this.addSql(`alter table "spend_ledger_unpartitioned" rename constraint "spend_ledger_pkey" to "spend_ledger_unpartitioned_pkey";`);
    this.addSql(`alter index "spend_ledger_customer_id_created_at_index" rename to "spend_ledger_unpartitioned_customer_id_created_at_index";`);
    this.addSql(`alter index "spend_ledger_created_at_index" rename to "spend_ledger_unpartitioned_created_at_index";`);

    this.addSql(`create table "spend_ledger" ("request_id" varchar(64) not null, "customer_id" varchar(256) null, "api_key_hash" varchar(128) null, "key_alias" varchar(256) null, "model" varchar(256) not null, "deployment_id" varchar(300) not null, "provider" varchar(64) not null, "endpoint" varchar(64) not null, "prompt_tokens" int not null, "completion_tokens" int not null, "cached_prompt_tokens" int not null default 0, "cache_write_tokens" int not null default 0, "cost_pico" bigint not null, "cost_source" varchar(16) not null, "status" varchar(16) not null, "period_start" timestamptz not null, "created_at" timestamptz not null, constraint "spend_ledger_pkey" primary key ("created_at", "request_id")) partition by range ("created_at");`);
    // Keyset pages of one customer (/spend/logs?end_user=…), and lookups by request id.
    this.addSql(`create index "spend_ledger_customer_id_created_at_request_id_index" on "spend_ledger" ("customer_id", "created_at", "request_id");`);
    this.addSql(`create index "spend_ledger_request_id_index" on "spend_ledger" ("request_id");`);
    this.addSql(`do $$
declare day timestamptz;
begin
  for day in select distinct date_trunc('day', created_at, 'UTC') from "spend_ledger_unpartitioned" loop
    execute format('create table %I partition of "spend_ledger" for values from (%L) to (%L)',
      'spend_ledger_p' || to_char(day at time zone 'UTC', 'YYYYMMDD'), day, day + interval '1 day');
  end loop;
end $$;`);
    this.addSql(`insert into "spend_ledger" ("request_id", "customer_id", "api_key_hash", "key_alias", "model", "deployment_id", "provider", "endpoint", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_write_tokens", "cost_pico", "cost_source", "status", "period_start", "created_at") select "request_id", "customer_id", "api_key_hash", "key_alias", "model", "deployment_id", "provider", "endpoint", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_write_tokens", "cost_pico", "cost_source", "status", "period_start", "created_at" from "spend_ledger_unpartitioned";`);

    this.addSql(`create table "spend_rollups" ("hour" timestamptz not null, "customer_id" varchar(256) not null, "model" varchar(256) not null, "spend_pico" bigint not null, "requests" bigint not null, "prompt_tokens" bigint not null, "completion_tokens" bigint not null, "cached_prompt_tokens" bigint not null, "cache_write_tokens" bigint not null, constraint "spend_rollups_pkey" primary key ("hour", "customer_id", "model"));`);
    this.addSql(`create index "spend_rollups_customer_id_hour_index" on "spend_rollups" ("customer_id", "hour");`);
    this.addSql(`insert into "spend_rollups" ("hour", "customer_id", "model", "spend_pico", "requests", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_write_tokens") select date_trunc('hour', "created_at", 'UTC'), coalesce("customer_id", ''), "model", sum("cost_pico"), count(*), sum("prompt_tokens"), sum("completion_tokens"), sum("cached_prompt_tokens"), sum("cache_write_tokens") from "spend_ledger_unpartitioned" group by 1, 2, 3;`);
    // The same per hour × model alone, for reports over all customers.
    this.addSql(`create table "spend_rollups_by_model" ("hour" timestamptz not null, "model" varchar(256) not null, "spend_pico" bigint not null, "requests" bigint not null, "prompt_tokens" bigint not null, "completion_tokens" bigint not null, "cached_prompt_tokens" bigint not null, "cache_write_tokens" bigint not null, constraint "spend_rollups_by_model_pkey" primary key ("hour", "model"));`);
    this.addSql(`insert into "spend_rollups_by_model" ("hour", "model", "spend_pico", "requests", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_write_tokens") select "hour", "model", sum("spend_pico"), sum("requests"), sum("prompt_tokens"), sum("completion_tokens"), sum("cached_prompt_tokens"), sum("cache_write_tokens") from "spend_rollups" group by 1, 2;`);
    this.addSql(`drop table "spend_ledger_unpartitioned";`);
  }

}
