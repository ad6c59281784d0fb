import { Migration } from '@mikro-orm/migrations';

/**
 * The part of the charge paid from prepaid credits, in every rollup grain, so statements
 * ("credits used") read the rollups like the rest of a report. Nothing to backfill: the
 * ledger's `credit_pico` arrives in the same release (Migration20261201120000), so every
 * row written before it is 0.
 */
export class Migration20261201123000 extends Migration {
  override async up(): Promise<void> {
    for (const table of ['spend_rollups', 'spend_rollups_daily', 'spend_rollups_by_model']) {
      this.addSql(`alter table "${table}" add column if not exists "credit_pico" bigint not null default 0;`);
    }
  }

  override async down(): Promise<void> {
    for (const table of ['spend_rollups', 'spend_rollups_daily', 'spend_rollups_by_model']) {
      this.addSql(`alter table "${table}" drop column if exists "credit_pico";`);
    }
  }
}
