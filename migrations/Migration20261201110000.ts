import { Migration } from '@mikro-orm/migrations';

/**
 * Usage exporters (Stripe meter events, OpenMeter): the customer's Stripe id, and the export
 * outbox, one row per exporter and metered request, written in the ledger's transaction.
 * Additive: nothing existing changes.
 */
export class Migration20261201110000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "customers" add column if not exists "stripe_customer_id" varchar(256) null;`);
    this.addSql(`create table if not exists "usage_exports" (
      "exporter" varchar(64) not null,
      "request_id" varchar(64) not null,
      "customer_id" varchar(256) not null,
      "body" text not null,
      "status" varchar(16) not null,
      "attempts" int not null default 0,
      "next_attempt_at" timestamptz null,
      "give_up_at" timestamptz not null,
      "last_attempt_at" timestamptz null,
      "last_error" text null,
      "delivered_at" timestamptz null,
      "created_at" timestamptz not null,
      constraint "usage_exports_pkey" primary key ("exporter", "request_id"));`);
    this.addSql(`create index if not exists "usage_exports_due_index" on "usage_exports" ("exporter", "next_attempt_at") where "status" = 'pending';`);
    this.addSql(`create index if not exists "usage_exports_status_index" on "usage_exports" ("status", "created_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "usage_exports";`);
    this.addSql(`alter table "customers" drop column if exists "stripe_customer_id";`);
  }

}
