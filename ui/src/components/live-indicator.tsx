import { useLiveState } from '../session';

const LABELS = { connecting: 'Connecting…', live: 'Live', offline: 'Offline, retrying', refused: 'Refused' } as const;

/** Shows whether live updates are flowing (the graphql-ws connection). */
export function LiveIndicator() {
  const state = useLiveState();
  return (
    <span className={`live live-${state}`} role="status" aria-live="polite" data-testid="live-state" data-state={state}>
      <span className="live-dot" aria-hidden="true" />
      {LABELS[state]}
    </span>
  );
}
