/**
 * @module Carries live spend and budget events between processes over Redis pub/sub, so a
 * GraphQL subscriber connected to any process (the control plane, say) sees the requests
 * metered by every proxy. Each process publishes the events it produced and republishes
 * on its own buses the events other processes produced; nothing else listens to these
 * buses, so a relayed event is never metered or alerted twice. Fire-and-forget: a lost
 * live event costs a subscriber one update, never a dollar (the ledger has them all).
 * The events of one event-loop turn go out in one PUBLISH (a message holds a batch), not
 * one command per request.
 */
import { randomUUID } from 'node:crypto';
import { duplicateConnection, type AnyRedis } from './redis';
import { atEndOfTurn } from '../shared/end-of-turn';
import type { BudgetEventBus, SpendEventBus } from '../ledger/events';
import type { Logger } from '../observability/logger';

type Kind = 'spend' | 'budget';

interface Envelope {
  origin: string;
  kind: Kind;
  event: unknown;
}

/** What one PUBLISH carries: the events of one event-loop turn of one process. */
interface Batch {
  origin: string;
  events: { kind: Kind; event: unknown }[];
}

/** JSON has no bigint: pico amounts travel as {"$bigint": "123"}. */
function encode(value: unknown): string {
  return JSON.stringify(value, (_key, item) => (typeof item === 'bigint' ? { $bigint: item.toString() } : item));
}

function decode<T>(text: string): T {
  return JSON.parse(text, (_key, item) => (item && typeof item === 'object' && typeof item.$bigint === 'string' ? BigInt(item.$bigint) : item)) as T;
}

export class RedisEventRelay {
  private readonly origin = randomUUID();
  /** How every message this process publishes begins (`encode` writes `origin` first). */
  private readonly ownPrefix = `{"origin":${JSON.stringify(this.origin)},`;
  private readonly channel: string;
  private subscriber: AnyRedis | null = null;
  /** Events this process received from others: not to be sent back out. */
  private readonly relayed = new WeakSet<object>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly redis: AnyRedis,
    prefix: string,
    private readonly spend: SpendEventBus,
    private readonly budget: BudgetEventBus,
    private readonly logger: Logger,
  ) {
    this.channel = `${prefix}live-events`;
  }

  async start(): Promise<void> {
    const subscriber = duplicateConnection(this.redis);
    this.subscriber = subscriber;
    subscriber.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'redis live-event connection error'));
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      // This process's own messages come back too: skipped before parsing (they start with its origin).
      if (message.startsWith(this.ownPrefix)) return;
      try {
        const decoded = decode<Batch | Envelope>(message);
        if (decoded.origin === this.origin) return;
        // A single envelope: what a process of an earlier release sends.
        for (const { kind, event } of 'events' in decoded ? decoded.events : [decoded]) {
          this.relayed.add(event as object);
          if (kind === 'spend') this.spend.publish(event as Parameters<SpendEventBus['publish']>[0]);
          else if (kind === 'budget') this.budget.publish(event as Parameters<BudgetEventBus['publish']>[0]);
        }
      } catch (error) {
        this.logger.warn({ err: error }, 'ignoring an unreadable live event');
      }
    });
    if (subscriber.status === 'wait') await subscriber.connect();
    await subscriber.subscribe(this.channel);
    this.unsubscribe.push(this.spend.subscribe((event) => this.send('spend', event)));
    this.unsubscribe.push(this.budget.subscribe((event) => this.send('budget', event)));
  }

  private send(kind: Kind, event: object): void {
    if (this.relayed.has(event)) return;
    if (!this.outgoing.length) atEndOfTurn('network', this.flush);
    this.outgoing.push({ kind, event });
  }

  /** Events of this turn, published together once it is over. */
  private outgoing: Batch['events'] = [];

  private readonly flush = (): void => {
    const events = this.outgoing;
    this.outgoing = [];
    if (!events.length || !this.subscriber) return;
    this.redis.publish(this.channel, encode({ origin: this.origin, events } satisfies Batch)).catch((error: Error) => {
      this.logger.debug({ err: error.message, events: events.length }, 'live events not relayed (redis unavailable)');
    });
  };

  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    this.flush(); // the last turn's events, before the connection goes
    this.subscriber?.disconnect();
    this.subscriber = null;
  }
}
