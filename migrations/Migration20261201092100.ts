import { Migration } from '@mikro-orm/migrations';

/**
 * Customer search at any number of customers: trigram indexes serve `ilike '%text%'` (prefix
 * and substring) on the id and the alias, so a search page never scans the table. pg_trgm is
 * a trusted extension (PostgreSQL contrib; PGlite loads it from @electric-sql/pglite/contrib).
 */
export class Migration20261201092100 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create extension if not exists pg_trgm;`);
    this.addSql(`create index if not exists "customers_user_id_trgm_index" on "customers" using gin ("user_id" gin_trgm_ops);`);
    this.addSql(`create index if not exists "customers_alias_trgm_index" on "customers" using gin ("alias" gin_trgm_ops);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "customers_alias_trgm_index";`);
    this.addSql(`drop index if exists "customers_user_id_trgm_index";`);
  }
}
