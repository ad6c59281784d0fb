/**
 * @module Delivers the outbox, off the request path. Woken when a ledger batch enqueued
 * events and polled for due retries; claims due deliveries per URL several rounds of attempts
 * ahead (CLAIM_ROUNDS_AHEAD) into a queue of its own, sends them with at most a per-URL number
 * of attempts in flight (a stalled receiver holds only its own slots), and writes the outcomes
 * back in one statement per batch. Claiming ahead is what lets delivery keep up with a busy
 * gateway: one claim per attempt cost three database round trips per webhook, and a
 * `spend_tracked` event per request fell behind at ~750/s. Failed attempts are logged; a
 * delivery that runs out of retry time is logged as an error and listed as failed (GraphQL),
 * retryable.
 */
import type { Knex } from '@mikro-orm/postgresql';
import type { Logger } from '../observability/logger';
import { retryDelayMs } from './backoff';
import { claimDue, pendingUrls, purgeDelivered, recordResults, releaseClaims, type AttemptResult, type ClaimedDelivery } from './outbox';
import type { WebhookSender } from './sender';
import type { WebhookSettings } from './settings';

/** Extra lease beyond the attempts' timeouts, for writing the outcomes back. */
const LEASE_MARGIN_MS = 5_000;
/**
 * Rounds of attempts (each up to the per-URL concurrency) claimed per URL at once. A claim's
 * lease covers every round before its last attempt ends, each bounded by the attempt timeout;
 * so a process killed with a full queue delays those deliveries by that lease (default
 * (8 + 1) × 10 s + 5 s) before another process, or its restart, sends them.
 */
const CLAIM_ROUNDS_AHEAD = 8;
/**
 * Finished attempts are written back together: at most this long after the first of them, or
 * at once when this many are waiting. Under load that is one statement per ~100 outcomes,
 * not one per claim round (~20 outcomes). An outcome not yet written when the process is
 * killed is sent again after its lease: the receiver sees that event twice (same webhook-id),
 * as with any at-least-once delivery.
 */
const RESULTS_FLUSH_DELAY_MS = 50;
const RESULTS_FLUSH_AT = 200;
/** How often delivered events past their retention are deleted. */
const PURGE_INTERVAL_MS = 60 * 60 * 1000;

export class WebhookDispatcher {
  private readonly inFlightByUrl = new Map<string, number>();
  /** Claimed (leased) deliveries per URL, waiting for a free attempt slot. */
  private readonly queuedByUrl = new Map<string, ClaimedDelivery[]>();
  private readonly attempts = new Set<Promise<void>>();
  private results: AttemptResult[] = [];
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  /**
   * Whether the next round looks up every URL with pending deliveries (started, polled, or
   * woken by a ledger batch that enqueued events), or only refills `lowUrls`: the URLs whose
   * queues ran low as their attempts finished. Under load nearly every round is a refill, and
   * the lookup it skips is a statement of its own.
   */
  private scanAll = true;
  private readonly lowUrls = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private purgeTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** The last write of outcomes failed: the next waits for its retry timer, however many pile up. */
  private flushFailed = false;
  private started = false;
  private stopped = false;

  constructor(
    private readonly database: () => Knex,
    private readonly sender: WebhookSender,
    private readonly settings: WebhookSettings,
    private readonly logger: Logger,
  ) {}

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

  /** Looks for due deliveries of every URL now (coalesced: one round at a time, another after it if asked). */
  wake(): void {
    this.scanAll = true;
    this.schedulePump();
  }

  /** Claims more of one URL's due deliveries, its queue having run low. */
  private refill(url: string): void {
    this.lowUrls.add(url);
    this.schedulePump();
  }

  private schedulePump(): void {
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
      const scanAll = this.scanAll;
      const lowUrls = [...this.lowUrls];
      this.scanAll = false;
      this.lowUrls.clear();
      try {
        if (this.stopped) return;
        const database = this.database();
        const concurrency = this.settings.maxConcurrencyPerUrl;
        for (const url of scanAll ? await pendingUrls(database) : lowUrls) {
          if (this.stopped) break;
          const queue = this.queuedByUrl.get(url) ?? [];
          // Refill only once the queue runs low: not one claim per finished attempt.
          if (queue.length >= concurrency) continue;
          const held = (this.inFlightByUrl.get(url) ?? 0) + queue.length;
          const wanted = concurrency * CLAIM_ROUNDS_AHEAD - held;
          if (wanted <= 0) continue;
          // The last of them starts after this many rounds ahead of it, each at most one timeout.
          const rounds = Math.ceil((held + wanted) / concurrency);
          const leaseMs = (rounds + 1) * this.settings.timeoutMs + LEASE_MARGIN_MS;
          const claimed = await claimDue(database, url, wanted, leaseMs);
          if (!claimed.length) continue;
          this.queuedByUrl.set(url, queue.concat(claimed));
          this.startQueued(url);
        }
      } catch (error) {
        // Database unreachable: nothing is lost (the outbox is durable); the poll tries again.
        this.scanAll = true;
        this.logger.warn({ err: error }, 'webhook dispatcher round failed; will retry');
        return;
      }
    } while (this.pumpAgain && !this.stopped);
  }

  /** Starts queued attempts of `url` while it has free slots. */
  private startQueued(url: string): void {
    const queue = this.queuedByUrl.get(url);
    while (queue?.length && !this.stopped && (this.inFlightByUrl.get(url) ?? 0) < this.settings.maxConcurrencyPerUrl) {
      this.attempt(queue.shift()!);
    }
    if (queue && !queue.length) this.queuedByUrl.delete(url);
  }

  private attempt(delivery: ClaimedDelivery): void {
    const { url } = delivery;
    this.inFlightByUrl.set(url, (this.inFlightByUrl.get(url) ?? 0) + 1);
    const attemptedAt = new Date();
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
        this.results.push({ eventId: delivery.eventId, url, attempts: delivery.attempts, ok: result.ok, statusCode: result.statusCode, error: result.error, retryDelayMs: retryDelay, attemptedAt });
      })
      .finally(() => {
        const left = (this.inFlightByUrl.get(url) ?? 1) - 1;
        if (left > 0) this.inFlightByUrl.set(url, left);
        else this.inFlightByUrl.delete(url);
        this.attempts.delete(attempt);
        this.startQueued(url);
        if ((this.queuedByUrl.get(url)?.length ?? 0) < this.settings.maxConcurrencyPerUrl) this.refill(url);
        this.scheduleFlush();
      });
    this.attempts.add(attempt);
  }

  /** Writes the finished attempts back soon, or now when enough of them wait. */
  private scheduleFlush(): void {
    // One write at a time; the one running schedules the next when it ends.
    if (this.stopped || this.flushing) return;
    if (this.results.length >= RESULTS_FLUSH_AT && !this.flushFailed) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.flushInBackground();
      return;
    }
    if (!this.flushTimer) this.scheduleFlushAfter(RESULTS_FLUSH_DELAY_MS);
  }

  private flushInBackground(): void {
    this.flushing = this.flushResults().then(
      () => {
        this.flushing = null;
        this.flushFailed = false;
        if (this.results.length) this.scheduleFlush();
      },
      (error: unknown) => {
        // The outcomes were put back; tried again after a poll interval, not in a tight loop.
        this.flushing = null;
        this.flushFailed = true;
        this.logger.warn({ err: error }, 'could not record webhook attempts; will retry');
        if (this.flushTimer) clearTimeout(this.flushTimer);
        this.flushTimer = null;
        this.scheduleFlushAfter(this.settings.pollIntervalMs);
      },
    );
  }

  private scheduleFlushAfter(delayMs: number): void {
    if (this.stopped) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flushInBackground();
    }, delayMs);
    this.flushTimer.unref();
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

  /**
   * Stops claiming, lets attempts in flight finish (each bounded by the timeout), records them,
   * and hands the claimed deliveries not yet attempted back to the outbox, due at once.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.pumping;
    await Promise.allSettled([...this.attempts]);
    await this.flushing;
    try {
      await this.flushResults();
    } catch (error) {
      this.logger.warn({ err: error }, 'could not record the last webhook attempts; they will be retried after their lease');
    }
    const unsent = [...this.queuedByUrl.values()].flat();
    this.queuedByUrl.clear();
    try {
      await releaseClaims(this.database(), unsent);
    } catch (error) {
      this.logger.warn({ err: error, deliveries: unsent.length }, 'could not hand claimed webhook deliveries back; they will be sent after their lease');
    }
    await this.sender.close();
  }
}
