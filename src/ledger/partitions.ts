/**
 * @module The ledger's daily partitions (`spend_ledger_pYYYYMMDD`, UTC days of `created_at`).
 * A maintenance pass (at start, then hourly) creates the partitions of the next days ahead of
 * the writes and, with `tollgate.ledger_retention_days`, drops the ones entirely older than
 * that; the writer also creates a missing day's partition before inserting into it (a
 * journal replay of an old record, a clock ahead of the maintenance). Processes sharing a
 * database take turns through an advisory lock. Rollups are not dropped with the rows:
 * reports over older periods keep working from them.
 */
import type { Knex, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';

const DAY_MS = 86_400_000;
/** Partitions created ahead of today by each maintenance pass. */
export const PARTITIONS_AHEAD_DAYS = 3;
const MAINTENANCE_INTERVAL_MS = 3_600_000;
/** Arbitrary constant shared by every Tollgate process: serialises partition DDL. */
const PARTITION_LOCK = 7_340_117_001;
const NAME = /^spend_ledger_p(\d{4})(\d{2})(\d{2})$/;

export function dayStartMs(atMs: number): number {
  return Math.floor(atMs / DAY_MS) * DAY_MS;
}

export function partitionName(dayMs: number): string {
  return `spend_ledger_p${new Date(dayMs).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

export interface PartitionMaintenanceResult {
  created: string[];
  dropped: string[];
}

export class LedgerPartitions {
  /** Days whose partition is known to exist (created or seen by this process). */
  private readonly known = new Set<number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly orm: MikroORM,
    private readonly retentionDays: number | null,
    private readonly logger: Logger | null = null,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get knex(): Knex {
    return this.orm.em.getConnection().getKnex();
  }

  /** Runs a pass now, then hourly; a failing pass is logged and retried at the next. */
  async start(): Promise<void> {
    await this.maintain().catch((error: Error) => this.logger?.error({ err: error }, 'ledger partition maintenance failed'));
    this.timer = setInterval(() => {
      void this.maintain().catch((error: Error) => this.logger?.error({ err: error }, 'ledger partition maintenance failed'));
    }, MAINTENANCE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Creates the partitions of today and the next days; drops those past retention. */
  async maintain(): Promise<PartitionMaintenanceResult> {
    const today = dayStartMs(this.now().getTime());
    const wanted = Array.from({ length: PARTITIONS_AHEAD_DAYS + 1 }, (_, index) => today + index * DAY_MS);
    const result: PartitionMaintenanceResult = { created: [], dropped: [] };
    await this.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [PARTITION_LOCK]);
      const existing = await this.existingDays(trx);
      for (const day of wanted) {
        if (existing.has(day)) continue;
        await createPartition(trx, day);
        result.created.push(partitionName(day));
      }
      if (this.retentionDays !== null) {
        // A partition goes once its newest possible row is older than the retention.
        const horizon = today - this.retentionDays * DAY_MS;
        for (const day of existing) {
          if (day + DAY_MS > horizon) continue;
          await trx.raw(`drop table ${quote(partitionName(day))}`);
          result.dropped.push(partitionName(day));
        }
      }
    });
    for (const day of wanted) this.known.add(day);
    for (const name of result.dropped) this.known.delete(dayOfName(name)!);
    if (result.created.length || result.dropped.length) this.logger?.info(result, 'ledger partitions maintained');
    return result;
  }

  /** Makes sure every day these instants fall on has its partition (before inserting rows there). */
  async ensureFor(instantsMs: Iterable<number>): Promise<void> {
    const missing = new Set<number>();
    for (const at of instantsMs) {
      const day = dayStartMs(at);
      if (!this.known.has(day)) missing.add(day);
    }
    if (!missing.size) return;
    await this.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [PARTITION_LOCK]);
      const existing = await this.existingDays(trx);
      for (const day of missing) if (!existing.has(day)) await createPartition(trx, day);
    });
    for (const day of missing) this.known.add(day);
  }

  /** The days that have a partition now. */
  async existingDays(connection: Knex | Knex.Transaction = this.knex): Promise<Set<number>> {
    const result = await connection.raw(
      `select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'spend_ledger'::regclass`,
    );
    const days = new Set<number>();
    for (const row of result.rows as { relname: string }[]) {
      const day = dayOfName(row.relname);
      if (day !== null) days.add(day);
    }
    return days;
  }
}

function dayOfName(name: string): number | null {
  const match = NAME.exec(name);
  return match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : null;
}

async function createPartition(trx: Knex.Transaction, dayMs: number): Promise<void> {
  const from = new Date(dayMs).toISOString();
  const to = new Date(dayMs + DAY_MS).toISOString();
  await trx.raw(`create table if not exists ${quote(partitionName(dayMs))} partition of spend_ledger for values from ('${from}') to ('${to}')`);
}

/** Partition names are generated (`spend_ledger_pYYYYMMDD`), never user input. */
function quote(identifier: string): string {
  return `"${identifier}"`;
}
