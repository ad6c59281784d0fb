import { Migration } from '@mikro-orm/migrations';

/**
 * Admin queries at millions of customers. Additive only:
 * - `spend_rollups_daily`: the hourly customer × model rollups summed per UTC day (24× fewer
 *   rows for reports over months), maintained in the ledger's transaction like the hourly ones
 *   and built here from them.
 * - `spend_counters_period_spend_index`: period counters by (scope, period start, spend), so
 *   "near cap", "over budget" and "sort by spend" are index range reads with a LIMIT.
 * - `customers_blocked_index`: the blocked customers (few) by id, for the status filter.
 */
export class Migration20261201121000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table if not exists "spend_rollups_daily" ("day" timestamptz not null, "customer_id" varchar(256) not null, "model" varchar(256) not null, "spend_pico" bigint not null, "charge_pico" bigint not null default 0, "requests" bigint not null, "prompt_tokens" bigint not null, "completion_tokens" bigint not null, "cached_prompt_tokens" bigint not null, "cache_write_tokens" bigint not null, constraint "spend_rollups_daily_pkey" primary key ("day", "customer_id", "model"));`);
    this.addSql(`create index if not exists "spend_rollups_daily_customer_id_day_index" on "spend_rollups_daily" ("customer_id", "day");`);
    this.addSql(`insert into "spend_rollups_daily" ("day", "customer_id", "model", "spend_pico", "charge_pico", "requests", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_write_tokens")
      select date_trunc('day', "hour", 'UTC'), "customer_id", "model", sum("spend_pico"), sum("charge_pico"), sum("requests"), sum("prompt_tokens"), sum("completion_tokens"), sum("cached_prompt_tokens"), sum("cache_write_tokens")
      from "spend_rollups" group by 1, 2, 3 on conflict do nothing;`);
    this.addSql(`create index if not exists "spend_counters_period_spend_index" on "spend_counters" ("scope", "period_start", "spend_pico" desc, "customer_id");`);
    this.addSql(`create index if not exists "customers_blocked_index" on "customers" ("user_id") where "blocked";`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "customers_blocked_index";`);
    this.addSql(`drop index if exists "spend_counters_period_spend_index";`);
    this.addSql(`drop table if exists "spend_rollups_daily";`);
  }
}
