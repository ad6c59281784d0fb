/**
 * @module Settlements the shared counters could not take (Redis briefly unreachable). The
 * charge itself is already in the ledger; this keeps the counter updates in order and
 * retries them until Redis answers, so the shared spend catches up instead of staying low.
 * An update counts as pending from the moment it is sent until Redis confirms it: one whose
 * reply is late (a stalled connection) is not "caught up", and keeps the crash journal.
 */
import type { Logger } from '../observability/logger';
import { isSharedStateRefusal } from './types';

type Operation = () => Promise<unknown>;

export class SharedStateCatchUp {
  private readonly queue: Operation[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** First attempts sent and not yet answered. */
  private inFlight = 0;

  constructor(
    private readonly logger: Logger | null = null,
    private readonly retryIntervalMs = 1000,
  ) {}

  /** Counter updates Redis has not confirmed yet: queued for a retry, or sent and unanswered. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /**
   * Counter updates that failed at least once and wait for a retry. (The crash journal is kept
   * while there are any: counting first attempts too would keep it for ever under load.)
   */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Runs `operation` now; if it fails, queues it behind earlier failures for retrying. An
   * operation must be idempotent: one that timed out may have been applied all the same.
   */
  async run(operation: Operation, what: string): Promise<void> {
    if (this.queue.length === 0) {
      this.inFlight++;
      try {
        await operation();
        return;
      } catch (error) {
        if (this.refused(error, what)) return;
        this.logger?.warn({ err: (error as Error).message, what }, 'shared counters unreachable; will apply this when they are back');
        this.queue.push(operation);
        this.schedule();
        return;
      } finally {
        this.inFlight--;
      }
    }
    this.queue.push(operation);
    this.schedule();
  }

  /**
   * Redis answered with a script error: retrying would fail the same way and hold up every
   * update behind it. Logged and dropped; the ledger has the charge.
   */
  private refused(error: unknown, what: string): boolean {
    if (!isSharedStateRefusal(error)) return false;
    this.logger?.error({ err: error.message, what }, 'Redis refused a counter update; the ledger has the charge, the shared counter does not');
    return true;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.drain();
    }, this.retryIntervalMs);
    this.timer.unref();
  }

  /** Applies queued operations in order; stops at the first that still fails. */
  async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        try {
          await this.queue[0]!();
        } catch (error) {
          if (!this.refused(error, 'retry')) {
            this.schedule();
            return;
          }
        }
        this.queue.shift();
      }
      this.logger?.info('shared counters caught up');
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.queue.length) this.logger?.error({ pending: this.queue.length }, 'stopping with counter updates Redis never took; the ledger has them');
  }
}
