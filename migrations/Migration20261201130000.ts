import { Migration } from '@mikro-orm/migrations';

/**
 * How many customers each budget has, kept by triggers on `customers` instead of counted on
 * every read: at 10M customers, counting the default budget's customers (all without a budget
 * of their own) walked 6.7M index entries, 0.7 s, on every budgets page. Each statement that
 * inserts, re-tiers or deletes customers adds its net change per budget ('' = no budget) to
 * one of 16 slots (by backend pid), so concurrent writers rarely wait on the same row; a
 * read sums a budget's slots.
 */
export class Migration20261201130000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table if not exists "budget_customer_counts" (
      "budget_id" varchar(256) not null,
      "slot" smallint not null,
      "customers" bigint not null,
      constraint "budget_customer_counts_pkey" primary key ("budget_id", "slot"));`);
    this.addSql(`create or replace function tollgate_add_budget_counts(changes jsonb) returns void language sql as $$
      insert into budget_customer_counts (budget_id, slot, customers)
      select c.budget_id, pg_backend_pid() % 16, c.delta
      from jsonb_to_recordset(changes) as c(budget_id text, delta bigint)
      where c.delta <> 0
      on conflict (budget_id, slot) do update set customers = budget_customer_counts.customers + excluded.customers
    $$;`);
    this.addSql(`create or replace function tollgate_count_inserted_customers() returns trigger language plpgsql as $$
      begin
        perform tollgate_add_budget_counts((select coalesce(jsonb_agg(jsonb_build_object('budget_id', b, 'delta', n)), '[]') from
          (select coalesce(budget_id, '') as b, count(*) as n from inserted group by 1) g));
        return null;
      end $$;`);
    this.addSql(`create or replace function tollgate_count_deleted_customers() returns trigger language plpgsql as $$
      begin
        perform tollgate_add_budget_counts((select coalesce(jsonb_agg(jsonb_build_object('budget_id', b, 'delta', -n)), '[]') from
          (select coalesce(budget_id, '') as b, count(*) as n from deleted group by 1) g));
        return null;
      end $$;`);
    this.addSql(`create or replace function tollgate_count_retiered_customers() returns trigger language plpgsql as $$
      begin
        perform tollgate_add_budget_counts((select coalesce(jsonb_agg(jsonb_build_object('budget_id', b, 'delta', n)), '[]') from
          (select moved.b, sum(moved.n) as n
           from before_update o join after_update a using (user_id)
           cross join lateral (values (coalesce(o.budget_id, ''), -1), (coalesce(a.budget_id, ''), 1)) as moved(b, n)
           where o.budget_id is distinct from a.budget_id
           group by moved.b) g));
        return null;
      end $$;`);
    this.addSql(`create or replace function tollgate_reset_budget_counts() returns trigger language plpgsql as $$
      begin
        delete from budget_customer_counts;
        return null;
      end $$;`);
    this.addSql(`drop trigger if exists customers_count_insert on customers;`);
    this.addSql(`create trigger customers_count_insert after insert on customers referencing new table as inserted for each statement execute function tollgate_count_inserted_customers();`);
    this.addSql(`drop trigger if exists customers_count_delete on customers;`);
    this.addSql(`create trigger customers_count_delete after delete on customers referencing old table as deleted for each statement execute function tollgate_count_deleted_customers();`);
    this.addSql(`drop trigger if exists customers_count_update on customers;`);
    this.addSql(`create trigger customers_count_update after update on customers referencing old table as before_update new table as after_update for each statement execute function tollgate_count_retiered_customers();`);
    this.addSql(`drop trigger if exists customers_count_truncate on customers;`);
    this.addSql(`create trigger customers_count_truncate after truncate on customers for each statement execute function tollgate_reset_budget_counts();`);
    // The customers already there: one pass, in this migration's transaction (the triggers
    // above see every later change).
    this.addSql(`delete from budget_customer_counts;`);
    this.addSql(`insert into budget_customer_counts (budget_id, slot, customers) select coalesce(budget_id, ''), 0, count(*) from customers group by 1;`);
  }

  override async down(): Promise<void> {
    for (const trigger of ['customers_count_insert', 'customers_count_delete', 'customers_count_update', 'customers_count_truncate']) {
      this.addSql(`drop trigger if exists ${trigger} on customers;`);
    }
    this.addSql(`drop function if exists tollgate_count_inserted_customers(); drop function if exists tollgate_count_deleted_customers();`);
    this.addSql(`drop function if exists tollgate_count_retiered_customers(); drop function if exists tollgate_reset_budget_counts();`);
    this.addSql(`drop function if exists tollgate_add_budget_counts(jsonb);`);
    this.addSql(`drop table if exists "budget_customer_counts";`);
  }
}
