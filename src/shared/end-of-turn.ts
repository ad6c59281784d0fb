/**
 * @module Work that runs once at the end of the current event-loop turn (in `setImmediate`,
 * once the turn's I/O callbacks have run), for every request the turn served: one journal
 * write and one socket write per connection instead of one per request.
 *
 * Stages run in order. Durable writes (the crash journal) go before network writes (Redis
 * commands): a settlement must never reach the shared counters before its record is in the
 * journal, or a `kill -9` between the two would leave a charge the ledger never sees.
 */
type Stage = 'durable' | 'network';

const queues: Record<Stage, (() => void)[]> = { durable: [], network: [] };
let scheduled = false;

/** Runs `task` at the end of this turn, after the earlier stages' tasks. */
export function atEndOfTurn(stage: Stage, task: () => void): void {
  queues[stage].push(task);
  if (scheduled) return;
  scheduled = true;
  setImmediate(runTurnEnd);
}

function runTurnEnd(): void {
  scheduled = false;
  const durable = queues.durable.splice(0);
  const network = queues.network.splice(0);
  // A task reports its own failures (to whoever waits for it); one never stops the others.
  for (const task of durable) runSafely(task);
  for (const task of network) runSafely(task);
}

function runSafely(task: () => void): void {
  try {
    task();
  } catch (error) {
    process.emitWarning(`end-of-turn task failed: ${(error as Error).message}`);
  }
}
