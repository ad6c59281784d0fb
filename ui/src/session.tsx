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
 * Calls `onUpdate` for each metered request (of one customer, or of all when null) and
 * `onGap` whenever events may have been missed (stream ended, reconnected), so the page refetches.
 */
export function useSpendUpdates(customerId: string | null, onUpdate: (update: SpendUpdate) => void, onGap: () => void): void {
  const { live } = useSession();
  // The latest callbacks, without resubscribing on every render.
  const handlers = useRef({ onUpdate, onGap });
  handlers.current = { onUpdate, onGap };
  useEffect(() => {
    const stop = subscribeLive<SpendUpdate>(live, SPEND_UPDATED, customerId === null ? {} : { customerId }, {
      next: (update) => handlers.current.onUpdate(update),
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
  }, [live, customerId]);
}
