import { Migration } from '@mikro-orm/migrations';

export class Migration20261128170416 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "budget_alerts" ("event_id" varchar(64) not null, "customer_id" varchar(256) not null, "type" varchar(32) not null, "threshold_key" varchar(32) not null, "period_start" timestamptz not null, "budget_id" varchar(256) null, "spend_pico" bigint not null, "max_budget_pico" bigint null, "soft_budget_pico" bigint null, "request_id" varchar(64) not null, "created_at" timestamptz not null, constraint "budget_alerts_pkey" primary key ("event_id"));`);
    this.addSql(`alter table "budget_alerts" add constraint "budget_alerts_customer_id_type_threshold_key_peri_eb9ca_unique" unique ("customer_id", "type", "threshold_key", "period_start");`);

    this.addSql(`create table "webhook_deliveries" ("event_id" varchar(64) not null, "url" varchar(2048) not null, "status" varchar(16) not null, "attempts" int not null default 0, "next_attempt_at" timestamptz null, "give_up_at" timestamptz not null, "last_attempt_at" timestamptz null, "last_status_code" int null, "last_error" text null, "delivered_at" timestamptz null, "created_at" timestamptz not null, constraint "webhook_deliveries_pkey" primary key ("event_id", "url"));`);
    this.addSql(`create index "webhook_deliveries_status_url_next_attempt_at_index" on "webhook_deliveries" ("status", "url", "next_attempt_at");`);
    this.addSql(`create index "webhook_deliveries_status_created_at_index" on "webhook_deliveries" ("status", "created_at");`);

    this.addSql(`create table "webhook_events" ("event_id" varchar(64) not null, "event_type" varchar(32) not null, "customer_id" varchar(256) null, "body" text not null, "created_at" timestamptz not null, constraint "webhook_events_pkey" primary key ("event_id"));`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "budget_alerts" cascade;`);

    this.addSql(`drop table if exists "webhook_deliveries" cascade;`);

    this.addSql(`drop table if exists "webhook_events" cascade;`);
  }

}
