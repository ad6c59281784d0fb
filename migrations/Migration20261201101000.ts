import { Migration } from '@mikro-orm/migrations';

/**
 * Keys are named by id, never by a hash of them: `spend_ledger.api_key_id` replaces
 * `api_key_hash` (an unsalted sha256, from which a weak key is guessed offline). Existing rows
 * get the id of the key whose hash they hold, else `master` (keys are revoked, never deleted,
 * so a hash with no key row is the master key's); the hashes are then emptied, also inside
 * the stored webhook bodies (`"token":"<hash>"`). The column itself stays: additive only.
 */
export class Migration20261201101000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "spend_ledger" add column "api_key_id" varchar(64) null;`);
    this.addSql(`update "spend_ledger" l set "api_key_id" = k."id" from "api_keys" k where l."api_key_hash" = k."key_hash";`);
    this.addSql(`update "spend_ledger" set "api_key_id" = 'master' where "api_key_hash" is not null and "api_key_id" is null;`);
    this.addSql(`update "spend_ledger" set "api_key_hash" = null where "api_key_hash" is not null;`);
    this.addSql(
      `update "webhook_events" e set "body" = replace(e."body", '"token":"' || k."key_hash" || '"', '"token":"' || k."id" || '"') from "api_keys" k where position(k."key_hash" in e."body") > 0;`,
    );
    this.addSql(`update "webhook_events" set "body" = regexp_replace("body", '"token":"[0-9a-f]{64}"', '"token":"master"', 'g') where "body" ~ '"token":"[0-9a-f]{64}"';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "spend_ledger" drop column if exists "api_key_id";`);
  }
}
