/**
 * @module Cross-process registry freshness. A service that changes a budget, customer or key
 * publishes the change on a Redis channel; every other process reloads those entities from
 * the store. Without Redis there is one process and nothing to tell (`NO_INVALIDATION`).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { EntityChange } from '../store/load-state';
import type { Logger } from '../observability/logger';

export type { EntityChange };

export interface Invalidation {
  /** Tells the other processes; resolves once Redis has passed the notice on. */
  publish(changes: EntityChange[]): Promise<void>;
  stop(): Promise<void>;
}

export const NO_INVALIDATION: Invalidation = {
  publish: async () => {},
  stop: async () => {},
};

interface Notice {
  origin: string;
  changes: EntityChange[];
}

export class RedisInvalidation implements Invalidation {
  /** Tells this process's own notices apart from the others'. */
  private readonly origin = randomUUID();
  private readonly channel: string;
  private subscriber: Redis | null = null;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.channel = `${prefix}invalidate`;
  }

  /**
   * Subscribes on a connection of its own (a subscribed connection can do nothing else).
   * `onResync` runs when that connection comes back after a loss: notices published
   * meanwhile were never delivered, so everything must be reloaded.
   */
  async start(onChange: (changes: EntityChange[]) => void, onResync: () => void): Promise<void> {
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    let connectedBefore = false;
    subscriber.on('ready', () => {
      if (connectedBefore) onResync();
      connectedBefore = true;
    });
    // Reconnects by itself; a notice missed while Redis was away is lost (see README).
    subscriber.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'redis subscriber connection error'));
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const notice = JSON.parse(message) as Notice;
        if (notice.origin !== this.origin && Array.isArray(notice.changes) && notice.changes.length) onChange(notice.changes);
      } catch (error) {
        this.logger.warn({ err: error }, 'ignoring an unreadable invalidation notice');
      }
    });
    if (subscriber.status === 'wait') await subscriber.connect(); // duplicated with lazyConnect
    await subscriber.subscribe(this.channel);
  }

  async publish(changes: EntityChange[]): Promise<void> {
    if (!changes.length) return;
    const notice: Notice = { origin: this.origin, changes };
    try {
      await this.redis.publish(this.channel, JSON.stringify(notice));
    } catch (error) {
      // The store already has the change; other processes see it at their next start.
      this.logger.error({ err: error, changes }, 'could not tell other processes about a change');
    }
  }

  async stop(): Promise<void> {
    this.subscriber?.disconnect();
    this.subscriber = null;
  }
}
