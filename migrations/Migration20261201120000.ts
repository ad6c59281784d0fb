import { Migration } from '@mikro-orm/migrations';

/**
 * Prepaid credits: a customer's grants (idempotent by reference per customer), `prepaid` on
 * budgets (tiers) and customers, and per ledger row the part of its charge paid from credits
 * (the ledger stays the truth of what was consumed). Additive: existing rows keep meaning
 * what they meant (not prepaid, nothing paid from credits).
 */
export class Migration20261201120000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "budgets" add column if not exists "prepaid" boolean not null default false;`);
    this.addSql(`alter table "customers" add column if not exists "prepaid" boolean not null default false;`);
    this.addSql(`alter table "spend_ledger" add column if not exists "credit_pico" bigint not null default 0;`);
    this.addSql(`create table if not exists "credit_grants" (
      "id" varchar(64) not null,
      "customer_id" varchar(256) not null,
      "reference" varchar(256) not null,
      "amount_pico" bigint not null,
      "kind" varchar(16) not null,
      "expires_at" timestamptz null,
      "voided_at" timestamptz null,
      "created_by" varchar(256) null,
      "created_at" timestamptz not null,
      constraint "credit_grants_pkey" primary key ("id"),
      constraint "credit_grants_amount_positive" check ("amount_pico" > 0),
      constraint "credit_grants_customer_reference_unique" unique ("customer_id", "reference"));`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "credit_grants";`);
    this.addSql(`alter table "spend_ledger" drop column if exists "credit_pico";`);
    this.addSql(`alter table "customers" drop column if exists "prepaid";`);
    this.addSql(`alter table "budgets" drop column if exists "prepaid";`);
  }

}
