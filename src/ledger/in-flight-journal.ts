/**
 * @module Journal of the requests a process is serving right now, for the next start after a
 * `kill -9`. Every `intervalMs` (only when something changed) the whole set of in-flight
 * requests is written to one small file, atomically (write a temporary file, rename; no
 * fsync: a killed process's page cache survives it). A restart on the same data dir reads
 * the file a dead process left and settles those requests: a stream is charged what it had
 * delivered by its last snapshot, and every reservation the process held is given back.
 * Snapshots are pulled from the tracked requests, so the hot path does no I/O for this.
 */
import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { processAlive } from './journal';
import type { Logger } from 'pino';
import type { RateTicket } from '../shared-state/types';

/** What the restart needs to charge or release one interrupted request. */
export interface InFlightSnapshot {
  requestId: string;
  customerId: string | null;
  apiKeyId: string | null;
  keyAlias: string | null;
  model: string;
  deploymentId: string;
  provider: string;
  endpoint: string;
  /** Start of the budget period the request was admitted in. */
  periodStartMs: number;
  /** What it reserved, to give back (or turn into the charge) after a crash. */
  reservations: { scope: string; periodStartMs: number; amountPico: string }[];
  /** The rate-limit ticket it holds (parallel slot, reserved tokens), if any. */
  rateTicket: RateTicket | null;
  /** Tokens delivered to the client so far; null when nothing was delivered (or not a stream). */
  delivered: { promptTokens: number; completionTokens: number; cachedPromptTokens: number; cacheWriteTokens: number; costPico: string; chargePico?: string } | null;
  /** When this snapshot was taken. */
  atMs: number;
  /** As SpendRecord.customerOnRecord: the customer was in the store at admission. */
  customerOnRecord?: true;
}

/** The in-flight requests a process that is no longer running had, with their file. */
export interface OrphanedInFlight {
  path: string;
  requests: InFlightSnapshot[];
}

const FILE = /^in-flight-(\d+)-([0-9a-f]+)\.json$/;

type Snapshotter = () => InFlightSnapshot;

export class InFlightJournal {
  private readonly instance = `${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly path: string;
  private readonly tracked = new Map<string, Snapshotter>();
  /** The serialized file last written, to skip writing when nothing changed. */
  private written = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly directory: string,
    private readonly intervalMs: number,
    private readonly logger: Logger | null = null,
  ) {
    this.path = join(directory, `in-flight-${this.instance}.json`);
  }

  start(): void {
    this.timer = setInterval(() => this.writeNow(), this.intervalMs);
    this.timer.unref();
  }

  /** A request was admitted; `snapshot` describes it whenever the journal is written. */
  track(requestId: string, snapshot: Snapshotter): void {
    this.tracked.set(requestId, snapshot);
  }

  /** The request settled or was released: its own record (or nothing) is final. */
  untrack(requestId: string): void {
    this.tracked.delete(requestId);
  }

  get size(): number {
    return this.tracked.size;
  }

  /** Writes the current snapshot if it differs from the last one written. */
  writeNow(): void {
    try {
      if (this.tracked.size === 0) {
        if (this.written) {
          unlinkSync(this.path);
          this.written = '';
        }
        return;
      }
      const snapshots: InFlightSnapshot[] = [];
      for (const snapshot of this.tracked.values()) snapshots.push(snapshot());
      // `atMs` changes on every call; compare without it so an idle stream is not rewritten.
      const content = JSON.stringify(snapshots.map((s) => ({ ...s, atMs: 0 })));
      if (content === this.written) return;
      const temporary = `${this.path}.tmp`;
      writeFileSync(temporary, JSON.stringify(snapshots));
      renameSync(temporary, this.path);
      this.written = content;
    } catch (error) {
      // Losing a snapshot only delays a crashed request's release to its lease expiry.
      this.logger?.warn({ err: (error as Error).message }, 'could not write the in-flight journal');
    }
  }

  /**
   * Graceful stop, after the drain: normally nothing is in flight and the file goes; requests
   * the drain gave up on stay in it, for the next start to settle.
   */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.writeNow();
  }

  /** Files left by processes that are no longer running (crashed or killed). */
  orphaned(): OrphanedInFlight[] {
    if (!existsSync(this.directory)) return [];
    const orphans: OrphanedInFlight[] = [];
    for (const name of readdirSync(this.directory)) {
      const match = FILE.exec(name);
      if (!match || `${match[1]}-${match[2]}` === this.instance) continue;
      // Same pid, other instance: an earlier incarnation (containers reuse pid 1).
      const pid = Number(match[1]);
      if (pid !== process.pid && processAlive(pid)) continue;
      const path = join(this.directory, name);
      orphans.push({ path, requests: readSnapshots(path, this.logger) });
    }
    return orphans;
  }

  /** Deletes an orphaned file once its requests are settled. */
  static discard(path: string): void {
    for (const file of [path, `${path}.tmp`]) {
      try {
        unlinkSync(file);
      } catch {
        /* already gone */
      }
    }
  }
}

function readSnapshots(path: string, logger: Logger | null): InFlightSnapshot[] {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return Array.isArray(parsed) ? (parsed as InFlightSnapshot[]) : [];
  } catch (error) {
    // Written by rename, so never torn; unreadable means someone else wrote it.
    logger?.warn({ err: (error as Error).message, path }, 'ignoring an unreadable in-flight journal');
    return [];
  }
}
