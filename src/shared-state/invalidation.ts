/**
 * @module Cross-process registry freshness. A service that changes a budget, customer or key
 * publishes the change on a Redis channel; every other process reloads those entities from
 * the store and acknowledges. `publish` waits for those acknowledgements, so once an admin
 * call has answered, every proxy already enforces it (a revoked key is refused everywhere,
 * not "soon"). Without Redis there is one process and nothing to tell (`NO_INVALIDATION`).
 */
import { randomUUID } from 'node:crypto';
import { duplicateConnection, publishCounted, type AnyRedis } from './redis';
import type { EntityChange } from '../store/load-state';
import type { Logger } from '../observability/logger';

export type { EntityChange };

export interface Invalidation {
  /** Tells the other processes; resolves once they have applied the change (or timed out). */
  publish(changes: EntityChange[]): Promise<void>;
  stop(): Promise<void>;
}

export const NO_INVALIDATION: Invalidation = {
  publish: async () => {},
  stop: async () => {},
};

interface Notice {
  origin: string;
  id: string;
  changes: EntityChange[];
}

interface Ack {
  id: string;
  from: string;
}

/** A published notice still waiting for the other processes to say they applied it. */
interface PendingNotice {
  acks: number;
  /** Unknown until PUBLISH answers with how many subscribers received the notice. */
  expected: number | null;
  done: () => void;
}

/** How long an admin call waits for a process that does not acknowledge (stuck, or dying). */
export const DEFAULT_ACK_TIMEOUT_MS = 2_000;

export class RedisInvalidation implements Invalidation {
  /** Tells this process's own notices apart from the others'. */
  private readonly origin = randomUUID();
  private readonly channel: string;
  private readonly ackChannel: string;
  private subscriber: AnyRedis | null = null;
  private readonly pending = new Map<string, PendingNotice>();

  constructor(
    private readonly redis: AnyRedis,
    prefix: string,
    private readonly logger: Logger,
    private readonly ackTimeoutMs = DEFAULT_ACK_TIMEOUT_MS,
  ) {
    this.channel = `${prefix}invalidate`;
    this.ackChannel = `${prefix}invalidate-ack`;
  }

  /**
   * Subscribes on a connection of its own (a subscribed connection can do nothing else).
   * `onChange` resolves once the change is applied; only then is it acknowledged.
   * `onResync` runs when that connection comes back after a loss: notices published
   * meanwhile were never delivered, so everything must be reloaded.
   */
  async start(onChange: (changes: EntityChange[]) => Promise<void>, onResync: () => void): Promise<void> {
    const subscriber = duplicateConnection(this.redis);
    this.subscriber = subscriber;
    let connectedBefore = false;
    subscriber.on('ready', () => {
      if (connectedBefore) onResync();
      connectedBefore = true;
    });
    // Reconnects by itself; a notice missed while Redis was away is lost (see README).
    subscriber.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'redis subscriber connection error'));
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.receiveNotice(message, onChange);
      else if (channel === this.ackChannel) this.receiveAck(message);
    });
    if (subscriber.status === 'wait') await subscriber.connect(); // duplicated with lazyConnect
    await subscriber.subscribe(this.channel, this.ackChannel);
  }

  async publish(changes: EntityChange[]): Promise<void> {
    if (!changes.length) return;
    const notice: Notice = { origin: this.origin, id: randomUUID(), changes };
    // Registered before publishing: an acknowledgement may come back before PUBLISH's reply.
    let done!: () => void;
    const acknowledged = new Promise<void>((resolve) => (done = resolve));
    const pending: PendingNotice = { acks: 0, expected: null, done };
    this.pending.set(notice.id, pending);
    let timer: NodeJS.Timeout | undefined;
    try {
      // Counted across a Redis Cluster's nodes too: one node's PUBLISH reply misses the
      // subscribers of the others, and the notice would not wait for their acks.
      const receivers = await publishCounted(this.redis, this.channel, JSON.stringify(notice));
      // The count includes this process's own subscription, which does not acknowledge.
      pending.expected = Math.max(0, receivers - (this.subscriber ? 1 : 0));
      if (pending.acks >= pending.expected) return;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.ackTimeoutMs)));
      if ((await Promise.race([acknowledged, timedOut])) === 'timeout') {
        this.logger.warn(
          { changes, expected: pending.expected, acknowledged: pending.acks },
          'some processes did not acknowledge a change in time; they apply it once they read it',
        );
      }
    } catch (error) {
      // The store already has the change; other processes see it at their next start.
      this.logger.error({ err: error, changes }, 'could not tell other processes about a change');
    } finally {
      clearTimeout(timer);
      this.pending.delete(notice.id);
    }
  }

  async stop(): Promise<void> {
    this.subscriber?.disconnect();
    this.subscriber = null;
    for (const pending of this.pending.values()) pending.done();
  }

  private receiveNotice(message: string, onChange: (changes: EntityChange[]) => Promise<void>): void {
    let notice: Notice;
    try {
      notice = JSON.parse(message) as Notice;
    } catch (error) {
      this.logger.warn({ err: error }, 'ignoring an unreadable invalidation notice');
      return;
    }
    if (notice.origin === this.origin || !Array.isArray(notice.changes) || !notice.changes.length) return;
    void onChange(notice.changes)
      .catch(() => undefined) // onChange logs its own failures; the publisher must not wait on them
      .then(() => {
        if (typeof notice.id !== 'string') return;
        const ack: Ack = { id: notice.id, from: this.origin };
        return this.redis.publish(this.ackChannel, JSON.stringify(ack));
      })
      .catch((error: unknown) => this.logger.warn({ err: error }, 'could not acknowledge a change notice'));
  }

  private receiveAck(message: string): void {
    let ack: Ack;
    try {
      ack = JSON.parse(message) as Ack;
    } catch {
      return;
    }
    const pending = this.pending.get(ack.id);
    if (!pending) return; // another process's notice, or one that already timed out
    pending.acks += 1;
    if (pending.expected !== null && pending.acks >= pending.expected) pending.done();
  }
}
