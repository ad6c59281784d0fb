/**
 * @module Vacuums the embedded store, which nothing else does. PGlite runs PostgreSQL in
 * single-user mode: there is no autovacuum, and its statistics collector does not report dead
 * rows. Without this, every row version an UPDATE or an upsert leaves behind stays in its
 * table and in each of its indexes for as long as the store lives: a webhook delivery is
 * written three times (enqueued, claimed, its outcome), a spend counter and a rollup row once
 * per ledger batch. Statements on those tables then slow down as the gateway runs: recording
 * webhook outcomes went from 0.08 to 0.21 ms a delivery over 90,000 deliveries, and stayed at
 * 0.05 ms with a vacuum every 15,000 (bench/profiles/README.md, session 8).
 *
 * So a timer runs a database-wide `VACUUM` (cheap on pages with nothing dead: the visibility
 * map skips them) and, less often, `VACUUM (ANALYZE)`, so the planner's statistics follow
 * tables that grew from empty. It goes through the store's one pooled connection like any
 * query, so it never lands inside another statement's transaction; but while it runs, that
 * connection waits (ledger batches, a customer read on a cache miss). A vacuum scans every
 * index of a table with dead rows, so it takes longer as tables grow: the pause after each one
 * is at least `pauseFactor` (20) times its duration, which keeps the vacuum under 1/20 of the
 * connection's time however large the store.
 */
import type { Knex } from '@mikro-orm/postgresql';

export interface EmbeddedVacuumOptions {
  /** Between the end of one vacuum and the start of the next. */
  intervalMs: number;
  /** Every how many vacuums the statistics are refreshed too. */
  analyzeEvery: number;
  /** The pause after a vacuum is at least this many times as long as the vacuum took. */
  pauseFactor: number;
}

/** At 3,000 requests/s with a webhook each, 10 s leaves ~60,000 dead row versions a round. */
export const DEFAULT_EMBEDDED_VACUUM: EmbeddedVacuumOptions = { intervalMs: 10_000, analyzeEvery: 30, pauseFactor: 20 };

export class EmbeddedVacuum {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private rounds = 0;
  private stopped = false;
  private lastDurationMs = 0;

  constructor(
    private readonly knex: () => Knex,
    private readonly onError: (error: unknown) => void,
    private readonly options: EmbeddedVacuumOptions = DEFAULT_EMBEDDED_VACUUM,
  ) {}

  start(): void {
    this.schedule();
  }

  /** Runs one round now (the timer's work; also what tests call). */
  async vacuum(): Promise<void> {
    this.rounds += 1;
    // The first round analyzes too: a store opened on old data gets statistics at once.
    const analyze = this.rounds % this.options.analyzeEvery === 1 || this.options.analyzeEvery === 1;
    const started = performance.now();
    await this.knex().raw(analyze ? 'vacuum (analyze)' : 'vacuum');
    this.lastDurationMs = performance.now() - started;
  }

  /** The pause before the next round (see the module's comment). */
  get nextPauseMs(): number {
    return Math.max(this.options.intervalMs, this.options.pauseFactor * this.lastDurationMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.vacuum()
        .catch((error: unknown) => {
          if (!this.stopped) this.onError(error);
        })
        .finally(() => {
          this.running = null;
          this.schedule();
        });
    }, this.nextPauseMs);
    // Never what keeps a process alive (a CLI command that opened the store exits as before).
    this.timer.unref();
  }
}
