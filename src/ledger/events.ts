/**
 * @module The publish interface for spend events. In-process fan-out now; listeners must not
 * block (they enqueue), so a slow subscriber can never slow the request that published.
 */
import type { SpendEvent } from './types';

export type SpendListener = (event: SpendEvent) => void;

export class SpendEventBus {
  private readonly listeners = new Set<SpendListener>();

  subscribe(listener: SpendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: SpendEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A faulty listener must not break metering; listeners log their own errors.
      }
    }
  }
}
