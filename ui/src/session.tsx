/** The signed-in session shared by every page: the key, the live connection, sign-out. */
import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import { request } from './api/graphql';
import { subscribeLive, type LiveConnection, type LiveState } from './api/live';
import { SPEND_UPDATED, type SpendUpdate } from './api/operations';

export interface Session {
  key: string;
  live: LiveConnection;
  signOut(reason?: string): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

/** Runs a query or mutation with the session's key. */
export function useGraphQL() {
  const { key } = useSession();
  return useCallback(<T,>(query: string, variables: Record<string, unknown> = {}) => request<T>(key, query, variables), [key]);
}

export function useLiveState(): LiveState {
  const { live } = useSession();
  const [state, setState] = useState(live.state());
  useEffect(() => live.onState(setState), [live]);
  return state;
}

/**
 * Calls `onNext` for each event of a subscription and `onGap` whenever events may have been
 * missed (the stream ended, or the connection came back), so the page can refetch.
 */
export function useLiveSubscription<T>(query: string, variables: Record<string, unknown>, onNext: (value: T) => void, onGap: () => void): void {
  const { live } = useSession();
  // The latest callbacks, without resubscribing on every render.
  const handlers = useRef({ onNext, onGap });
  handlers.current = { onNext, onGap };
  const variablesKey = JSON.stringify(variables);
  useEffect(() => {
    const stop = subscribeLive<T>(live, query, JSON.parse(variablesKey) as Record<string, unknown>, {
      next: (value) => handlers.current.onNext(value),
      gap: () => handlers.current.onGap(),
    });
    let wasLive = live.state() === 'live';
    const stopWatching = live.onState((state) => {
      if (state === 'live' && !wasLive) handlers.current.onGap();
      wasLive = state === 'live';
    });
    return () => {
      stop();
      stopWatching();
    };
  }, [live, query, variablesKey]);
}

/** Each metered request, of one customer or of all when `customerId` is null. */
export function useSpendUpdates(customerId: string | null, onUpdate: (update: SpendUpdate) => void, onGap: () => void): void {
  useLiveSubscription<SpendUpdate>(SPEND_UPDATED, customerId === null ? {} : { customerId }, onUpdate, onGap);
}
