/**
 * The live connection: one graphql-ws client over a WebSocket to /graphql, authenticated by
 * the key in connectionParams. Components subscribe through `subscribeLive`; the connection
 * state is shown in the header.
 */
import { createClient, type Client } from 'graphql-ws';

export type LiveState = 'connecting' | 'live' | 'offline' | 'refused';

/** graphql-ws closes with 4403 when the server's onConnect refuses the key. */
const FORBIDDEN = 4403;

export interface LiveConnection {
  client: Client;
  state(): LiveState;
  onState(listener: (state: LiveState) => void): () => void;
  close(): void;
}

export function connectLive(key: string): LiveConnection {
  let state: LiveState = 'connecting';
  const listeners = new Set<(state: LiveState) => void>();
  const set = (next: LiveState) => {
    state = next;
    listeners.forEach((listener) => listener(next));
  };
  const url = new URL('../graphql', window.location.href.split('#')[0]);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const client = createClient({
    url: url.toString(),
    connectionParams: { authorization: `Bearer ${key}` },
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    shouldRetry: (event) => (event as CloseEvent | undefined)?.code !== FORBIDDEN,
    // Reconnect after 1, 2, 4 … up to 15 seconds.
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(15_000, 1000 * 2 ** retries))),
    on: {
      connecting: () => set('connecting'),
      connected: () => set('live'),
      closed: (event) => set((event as CloseEvent | undefined)?.code === FORBIDDEN ? 'refused' : 'offline'),
    },
    onNonLazyError: () => undefined,
  });
  return {
    client,
    state: () => state,
    onState: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => void client.dispose(),
  };
}

export interface LiveHandlers<T> {
  next(value: T): void;
  /** The stream ended or broke (e.g. this tab fell behind): refetch, it resubscribes by itself. */
  gap(): void;
}

/** Subscribes to one field and keeps the subscription alive across ends and errors. */
export function subscribeLive<T>(connection: LiveConnection, query: string, variables: Record<string, unknown>, handlers: LiveHandlers<T>): () => void {
  let stopped = false;
  // Callbacks of a subscription that was replaced (or disposed by us) are ignored.
  let generation = 0;
  let unsubscribe: () => void = () => undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const start = () => {
    const mine = ++generation;
    unsubscribe = connection.client.subscribe<Record<string, T>>(
      { query, variables },
      {
        next: (result) => {
          if (mine !== generation) return;
          const value = result.data ? Object.values(result.data)[0] : null;
          if (value) handlers.next(value);
          if (result.errors?.length) restart();
        },
        error: () => mine === generation && restart(),
        complete: () => mine === generation && restart(),
      },
    );
  };
  const restart = () => {
    if (stopped) return;
    generation++;
    unsubscribe();
    handlers.gap();
    clearTimeout(retry);
    retry = setTimeout(() => !stopped && start(), 1000);
  };
  start();
  return () => {
    stopped = true;
    generation++;
    clearTimeout(retry);
    unsubscribe();
  };
}
