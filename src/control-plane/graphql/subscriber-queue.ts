/**
 * @module Bridges the synchronous event bus to one GraphQL subscriber: a bounded queue read as
 * an async iterator. The bus listener only filters and enqueues, so publishing never waits for
 * a WebSocket. A subscriber that falls more than `limit` events behind (its socket stalled)
 * is cut off: it stops receiving new events, gets what was queued, one `FellBehind` marker,
 * and then the end of the stream.
 */

/** Subscribes a listener to an event source; returns the unsubscribe function. */
export type EventSource<E> = (listener: (event: E) => void) => () => void;

/** Delivered once, in place of the events that no longer fit, before the stream ends. */
export class FellBehind {
  constructor(readonly limit: number) {}
}

/** Default number of undelivered events a subscriber may hold (about 0.5 MB of messages). */
export const SUBSCRIBER_QUEUE_LIMIT = 1000;

type State = 'open' | 'fell-behind' | 'closed';

export class SubscriberQueue<E> implements AsyncIterableIterator<E | FellBehind> {
  private readonly buffer: E[] = [];
  private state: State = 'open';
  private waiting: ((result: IteratorResult<E | FellBehind>) => void) | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    source: EventSource<E>,
    private readonly limit: number = SUBSCRIBER_QUEUE_LIMIT,
    private readonly accept: (event: E) => boolean = () => true,
  ) {
    this.unsubscribe = source((event) => this.push(event));
  }

  /** Undelivered events held for this subscriber. */
  get size(): number {
    return this.buffer.length;
  }

  private push(event: E): void {
    if (this.state !== 'open' || !this.accept(event)) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value: event, done: false });
      return;
    }
    if (this.buffer.length >= this.limit) {
      // Keeping a partial stream would show the client wrong totals without telling it; cut it
      // off instead, so it can re-read what it missed and subscribe again.
      // The events already queued are still delivered, in order, before the marker.
      this.state = 'fell-behind';
      this.unsubscribe();
      return;
    }
    this.buffer.push(event);
  }

  next(): Promise<IteratorResult<E | FellBehind>> {
    if (this.buffer.length) return Promise.resolve({ value: this.buffer.shift()!, done: false });
    if (this.state === 'fell-behind') {
      this.state = 'closed';
      return Promise.resolve({ value: new FellBehind(this.limit), done: false });
    }
    if (this.state === 'closed') return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<E | FellBehind>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<E | FellBehind>> {
    this.close();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<E | FellBehind> {
    return this;
  }

  private close(): void {
    if (this.state === 'open') this.unsubscribe();
    this.state = 'closed';
    this.buffer.length = 0;
    const resolve = this.waiting;
    this.waiting = null;
    resolve?.({ value: undefined, done: true });
  }
}
