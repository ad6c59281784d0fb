import { Migration } from '@mikro-orm/migrations';

export class Migration20261201090825 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "customer_audit" ("id" varchar(64) not null, "customer_id" varchar(256) not null, "action" varchar(32) not null, "actor" varchar(256) not null, "changes" jsonb not null, "created_at" timestamptz not null, constraint "customer_audit_pkey" primary key ("id"));`);
    this.addSql(`create index "customer_audit_customer_id_created_at_index" on "customer_audit" ("customer_id", "created_at");`);

    this.addSql(`create table "refused_requests" ("customer_id" varchar(256) not null, "model" varchar(256) not null, "reason" varchar(32) not null, "minute" timestamptz not null, "status" int not null, "limit_type" varchar(32) null, "limit_value" varchar(64) null, "budget_id" varchar(256) null, "message" text not null, "count" int not null, "first_at" timestamptz not null, "last_at" timestamptz not null, constraint "refused_requests_pkey" primary key ("customer_id", "model", "reason", "minute"));`);
    this.addSql(`create index "refused_requests_minute_index" on "refused_requests" ("minute");`);
    this.addSql(`create index "refused_requests_customer_id_last_at_index" on "refused_requests" ("customer_id", "last_at");`);

    this.addSql(`alter table "api_keys" add column "last_used_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "customer_audit" cascade;`);

    this.addSql(`drop table if exists "refused_requests" cascade;`);

    this.addSql(`alter table "api_keys" drop column "last_used_at";`);
  }

}
