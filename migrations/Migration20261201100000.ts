import { Migration } from '@mikro-orm/migrations';

/**
 * Billing for resellers: a budget's own prices (price_multiplier, model_prices) and, per ledger
 * row, the customer's charge beside the provider cost; keys bound to a customer, with limits of their own. Additive: rows written before carry
 * charge = cost (the default multiplier 1), so every sum over the ledger stays what it was.
 */
export class Migration20261201100000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "budgets" add column if not exists "price_multiplier" varchar(32) null, add column if not exists "model_prices" jsonb null;`);
    this.addSql(`alter table "spend_ledger" add column if not exists "charge_pico" bigint null;`);
    this.addSql(`update "spend_ledger" set "charge_pico" = "cost_pico" where "charge_pico" is null;`);
    // The hourly rollups carry the charge beside the cost; rows so far were charged their cost.
    this.addSql(`alter table "spend_rollups" add column if not exists "charge_pico" bigint not null default 0;`);
    this.addSql(`update "spend_rollups" set "charge_pico" = "spend_pico";`);
    this.addSql(`alter table "spend_rollups_by_model" add column if not exists "charge_pico" bigint not null default 0;`);
    this.addSql(`update "spend_rollups_by_model" set "charge_pico" = "spend_pico";`);
    this.addSql(`alter table "api_keys" add column if not exists "customer_id" varchar(256) null, add column if not exists "rpm_limit" int null, add column if not exists "max_budget_pico" bigint null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "api_keys" drop column if exists "customer_id", drop column if exists "rpm_limit", drop column if exists "max_budget_pico";`);
    this.addSql(`alter table "spend_ledger" drop column if exists "charge_pico";`);
    this.addSql(`alter table "spend_rollups" drop column if exists "charge_pico";`);
    this.addSql(`alter table "spend_rollups_by_model" drop column if exists "charge_pico";`);
    this.addSql(`alter table "budgets" drop column if exists "price_multiplier", drop column if exists "model_prices";`);
  }

}
