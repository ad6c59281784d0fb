/**
 * @module The publish interface for spend events. In-process fan-out now; listeners must not
 * block (they enqueue), so a slow subscriber can never slow the request that published.
 */
import type { BudgetEvent, SpendEvent } from './types';

export type Listener<E> = (event: E) => void;

/** Synchronous in-process fan-out; the seam where a Redis pub/sub transport plugs in later. */
export class EventBus<E> {
  private readonly listeners = new Set<Listener<E>>();

  subscribe(listener: Listener<E>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: E): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A faulty listener must not break metering; listeners log their own errors.
      }
    }
  }
}

/** Every metered request (published by the internal resolver at settlement). */
export class SpendEventBus extends EventBus<SpendEvent> {}

/** Budget alerts for customers (soft budget, thresholds, budget crossed). */
export class BudgetEventBus extends EventBus<BudgetEvent> {}
