/**
 * graphql-ws helpers for tests: a real client over a real WebSocket, and a collector that
 * records what one subscription delivered (results, errors, completion) and waits for it.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { MASTER_KEY } from './gateway';

export function wsUrl(baseUrl: string): string {
  return baseUrl.replace(/^http/, 'ws') + '/graphql';
}

export function liveClient(baseUrl: string, key: string | null = MASTER_KEY): Client {
  return createClient({
    url: wsUrl(baseUrl),
    webSocketImpl: WebSocket,
    connectionParams: key === null ? {} : { authorization: `Bearer ${key}` },
    retryAttempts: 0,
    lazy: true,
  });
}

export interface Delivery<T> {
  data: T[];
  errors: { message: string; extensions?: Record<string, unknown> }[];
  completed: boolean;
  failure: unknown;
}

/** Subscribes and collects every result until disposed. */
export function collect<T>(client: Client, query: string, variables: Record<string, unknown> = {}) {
  const delivery: Delivery<T> = { data: [], errors: [], completed: false, failure: null };
  const changed = new Set<() => void>();
  const notify = () => changed.forEach((callback) => callback());
  const dispose = client.subscribe<Record<string, T>>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) delivery.errors.push(...(result.errors as Delivery<T>['errors']));
        const value = result.data ? Object.values(result.data)[0] : null;
        if (value) delivery.data.push(value);
        notify();
      },
      error: (error) => {
        delivery.failure = error;
        notify();
      },
      complete: () => {
        delivery.completed = true;
        notify();
      },
    },
  );
  /** Resolves once `predicate` holds; rejects with what was delivered after `timeoutMs`. */
  const until = (predicate: (delivered: Delivery<T>) => boolean, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate(delivery)) return;
        clearTimeout(timer);
        changed.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        changed.delete(check);
        reject(new Error(`subscription condition not met within ${timeoutMs} ms; delivered: ${JSON.stringify({ ...delivery, data: delivery.data.length })}`));
      }, timeoutMs);
      changed.add(check);
      check();
    });
  return { delivery, until, dispose };
}
