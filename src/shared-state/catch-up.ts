/**
 * @module Settlements the shared counters could not take (Redis briefly unreachable). The
 * charge itself is already in the ledger; this keeps the counter updates in order and
 * retries them until Redis answers, so the shared spend catches up instead of staying low.
 */
import type { Logger } from '../observability/logger';

type Operation = () => Promise<unknown>;

export class SharedStateCatchUp {
  private readonly queue: Operation[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly logger: Logger | null = null,
    private readonly retryIntervalMs = 1000,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  /** Runs `operation` now; if it fails, queues it behind earlier failures for retrying. */
  async run(operation: Operation, what: string): Promise<void> {
    if (this.queue.length === 0) {
      try {
        await operation();
        return;
      } catch (error) {
        this.logger?.warn({ err: (error as Error).message, what }, 'shared counters unreachable; will apply this when they are back');
      }
    }
    this.queue.push(operation);
    this.schedule();
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
        } catch {
          this.schedule();
          return;
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
