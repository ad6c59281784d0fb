/**
 * @module Delivers the export outbox, off the request path: per exporter, one round at a time
 * claims a batch of due exports, sends them concurrently, and writes the outcomes back in one
 * statement. Woken when a ledger batch enqueued exports, and polled for due retries. Failed
 * attempts are retried with exponential backoff until the exporter's retry time runs out, then
 * the export is dead-lettered (status failed, listed and retryable through the API).
 */
import type { Knex } from '@mikro-orm/postgresql';
import type { Logger } from '../observability/logger';
import { retryDelayMs } from '../webhooks/backoff';
import { claimDueExports, purgeDeliveredExports, recordExportResults, type ExportResult } from './outbox';
import { senderFor, type ExportSender } from './senders';
import type { ExporterSettings } from './settings';

/** Extra lease beyond the attempt timeout, for writing the outcome back. */
const LEASE_MARGIN_MS = 5_000;
const PURGE_INTERVAL_MS = 60 * 60 * 1000;
/** Delivered exports are kept this long (for the API's delivered list), then deleted. */
const RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

class ExporterLoop {
  private round: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly sender: ExportSender;

  constructor(
    private readonly database: () => Knex,
    readonly settings: ExporterSettings,
    private readonly logger: Logger,
  ) {
    this.sender = senderFor(settings);
  }

  start(): void {
    this.timer = setInterval(() => this.wake(), this.settings.pollIntervalMs);
    this.timer.unref();
    this.wake();
  }

  wake(): void {
    if (this.stopped || !this.timer) return;
    if (this.round) {
      this.again = true;
      return;
    }
    this.round = this.run().finally(() => {
      this.round = null;
    });
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      try {
        const leaseMs = this.settings.timeoutMs + LEASE_MARGIN_MS;
        const claimed = await claimDueExports(this.database(), this.settings.name, this.settings.batchSize, leaseMs);
        if (!claimed.length) return;
        const results = await Promise.all(
          claimed.map(async (item): Promise<ExportResult> => {
            const outcome = await this.sender.send(item);
            const delay = retryDelayMs(item.attempts, this.settings.initialBackoffMs, this.settings.maxBackoffMs);
            if (!outcome.ok) {
              this.logger.warn({ exporter: this.settings.name, requestId: item.requestId, attempt: item.attempts, error: outcome.error, retryInMs: delay }, 'usage export attempt failed');
            }
            return { exporter: item.exporter, requestId: item.requestId, attempts: item.attempts, ok: outcome.ok, error: outcome.error, retryDelayMs: delay };
          }),
        );
        for (const row of await recordExportResults(this.database(), results)) {
          if (row.status !== 'failed') continue;
          this.logger.error(
            { exporter: row.exporter, requestId: row.requestId, attempts: row.attempts, error: results.find((r) => r.requestId === row.requestId)?.error },
            'usage export failed permanently (retry time used up); it is in the dead-letter list: retry it with POST /exporters/retry or GraphQL retryUsageExports',
          );
        }
        // A full batch: there may be more due right now.
        if (claimed.length === this.settings.batchSize) this.again = true;
      } catch (error) {
        // Database unreachable: nothing is lost (the outbox is durable; leases run out); the poll retries.
        this.logger.warn({ err: error, exporter: this.settings.name }, 'usage export round failed; will retry');
        return;
      }
    } while (this.again && !this.stopped);
  }

  /** Stops claiming and lets the round in flight finish (each attempt is bounded by the timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.round;
    await this.sender.close();
  }
}

export class ExportDispatcher {
  private readonly loops: ExporterLoop[];
  private purgeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly database: () => Knex,
    exporters: ExporterSettings[],
    private readonly logger: Logger,
  ) {
    this.loops = exporters.map((settings) => new ExporterLoop(database, settings, logger));
  }

  /** Before start (the ledger's crash recovery runs first) the outbox just accumulates. */
  start(): void {
    for (const loop of this.loops) loop.start();
    if (!this.loops.length) return;
    this.purgeTimer = setInterval(() => {
      purgeDeliveredExports(this.database(), RETENTION_MS).catch((error: unknown) => this.logger.warn({ err: error }, 'could not delete old delivered usage exports; will retry'));
    }, PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
  }

  wake(): void {
    for (const loop of this.loops) loop.wake();
  }

  async stop(): Promise<void> {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    await Promise.all(this.loops.map((loop) => loop.stop()));
  }
}
