/**
 * @module Delivers the outbox, off the request path. Woken when a ledger batch enqueued
 * events and polled for due retries; claims due deliveries per URL up to a per-URL number of
 * attempts in flight (a stalled receiver holds only its own slots), sends them, and writes
 * the outcomes back in one statement per round. Failed attempts are logged; a delivery that
 * runs out of retry time is logged as an error and listed as failed (GraphQL), retryable.
 */
import type { Knex } from '@mikro-orm/postgresql';
import type { Logger } from '../observability/logger';
import { retryDelayMs } from './backoff';
import { claimDue, dueUrls, purgeDelivered, recordResults, type AttemptResult, type ClaimedDelivery } from './outbox';
import type { WebhookSender } from './sender';
import type { WebhookSettings } from './settings';

/** Extra lease beyond the attempt timeout, for writing the outcome back. */
const LEASE_MARGIN_MS = 5_000;
/** How often delivered events past their retention are deleted. */
const PURGE_INTERVAL_MS = 60 * 60 * 1000;

export class WebhookDispatcher {
  private readonly inFlightByUrl = new Map<string, number>();
  private readonly attempts = new Set<Promise<void>>();
  private results: AttemptResult[] = [];
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private purgeTimer: NodeJS.Timeout | null = null;
  private started = false;
  private stopped = false;
  private readonly leaseMs: number;

  constructor(
    private readonly database: () => Knex,
    private readonly sender: WebhookSender,
    private readonly settings: WebhookSettings,
    private readonly logger: Logger,
  ) {
    this.leaseMs = 2 * settings.timeoutMs + LEASE_MARGIN_MS;
  }

  start(): void {
    this.started = true;
    this.timer = setInterval(() => this.wake(), this.settings.pollIntervalMs);
    this.timer.unref();
    this.purgeTimer = setInterval(() => void this.purge(), PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
    this.wake();
  }

  private async purge(): Promise<void> {
    try {
      const deleted = await purgeDelivered(this.database(), this.settings.retentionMs);
      if (deleted) this.logger.info({ deleted }, 'deleted delivered webhook events past their retention');
    } catch (error) {
      this.logger.warn({ err: error }, 'could not delete old webhook events; will retry');
    }
  }

  /** Looks for due deliveries now (coalesced: one round at a time, another after it if asked). */
  wake(): void {
    // Before start (the ledger's crash recovery runs first) the outbox just accumulates.
    if (!this.started || this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
    });
  }

  get inFlight(): number {
    return this.attempts.size;
  }

  private async pump(): Promise<void> {
    do {
      this.pumpAgain = false;
      try {
        await this.flushResults();
        if (this.stopped) return;
        const database = this.database();
        for (const url of await dueUrls(database)) {
          const free = this.settings.maxConcurrencyPerUrl - (this.inFlightByUrl.get(url) ?? 0);
          if (free <= 0 || this.stopped) continue;
          for (const delivery of await claimDue(database, url, free, this.leaseMs)) this.attempt(delivery);
        }
      } catch (error) {
        // Database unreachable: nothing is lost (the outbox is durable); the poll tries again.
        this.logger.warn({ err: error }, 'webhook dispatcher round failed; will retry');
        return;
      }
    } while (this.pumpAgain && !this.stopped);
  }

  private attempt(delivery: ClaimedDelivery): void {
    const { url } = delivery;
    this.inFlightByUrl.set(url, (this.inFlightByUrl.get(url) ?? 0) + 1);
    const attempt = this.sender
      .send(url, delivery.eventId, delivery.body)
      .then((result) => {
        const retryDelay = retryDelayMs(delivery.attempts, this.settings.initialBackoffMs, this.settings.maxBackoffMs);
        if (!result.ok) {
          this.logger.warn(
            { eventId: delivery.eventId, url, attempt: delivery.attempts, statusCode: result.statusCode, error: result.error, retryInMs: retryDelay },
            'webhook delivery attempt failed',
          );
        }
        this.results.push({ eventId: delivery.eventId, url, attempts: delivery.attempts, ok: result.ok, statusCode: result.statusCode, error: result.error, retryDelayMs: retryDelay });
      })
      .finally(() => {
        const left = (this.inFlightByUrl.get(url) ?? 1) - 1;
        if (left > 0) this.inFlightByUrl.set(url, left);
        else this.inFlightByUrl.delete(url);
        this.attempts.delete(attempt);
        this.wake();
      });
    this.attempts.add(attempt);
  }

  private async flushResults(): Promise<void> {
    if (!this.results.length) return;
    const batch = this.results;
    this.results = [];
    try {
      const updated = await recordResults(this.database(), batch);
      for (const row of updated) {
        if (row.status === 'failed') {
          const last = batch.find((r) => r.eventId === row.eventId && r.url === row.url);
          this.logger.error(
            { eventId: row.eventId, url: row.url, attempts: row.attempts, error: last?.error },
            'webhook delivery failed permanently (retry time used up); retry it with the retryWebhookDelivery mutation',
          );
        }
      }
    } catch (error) {
      this.results = batch.concat(this.results);
      throw error;
    }
  }

  /** Stops claiming, lets attempts in flight finish (each bounded by the timeout), records them. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    await this.pumping;
    await Promise.allSettled([...this.attempts]);
    try {
      await this.flushResults();
    } catch (error) {
      this.logger.warn({ err: error }, 'could not record the last webhook attempts; they will be retried after their lease');
    }
    await this.sender.close();
  }
}
