/**
 * @module Crash journal for metered requests not yet in the database. The records of one
 * event-loop turn are appended together (one write syscall, no fsync) at the turn's end, and
 * each request waits for its record's write before the response's last byte leaves, so a
 * `kill -9` of the process loses nothing: the next start replays the orphaned segments into
 * the ledger (inserts are idempotent by request id). Segments are deleted once their batch
 * commits.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { SpendRecord } from './types';
import { atEndOfTurn } from '../shared/end-of-turn';

/** The records of this turn, written together; `written` settles once they are in the file. */
interface PendingWrite {
  lines: string[];
  written: Promise<void>;
  settle: (error?: Error) => void;
}

const SEGMENT = /^segment-(\d+)-([0-9a-f]+)-(\d+)\.ndjson$/;

export class Journal {
  private readonly instance = `${process.pid}-${randomBytes(4).toString('hex')}`;
  private sequence = 0;
  private fd: number | null = null;
  private currentPath: string | null = null;
  private readonly sealed: string[] = [];
  private pendingWrite: PendingWrite | null = null;

  constructor(private readonly directory: string) {
    mkdirSync(directory, { recursive: true });
  }

  /** Queues the record for this turn's write; resolves once it is in the file. */
  append(record: SpendRecord): Promise<void> {
    const line = serialize(record) + '\n';
    if (this.pendingWrite) {
      this.pendingWrite.lines.push(line);
      return this.pendingWrite.written;
    }
    let settle!: (error?: Error) => void;
    const written = new Promise<void>((resolve, reject) => (settle = (error) => (error ? reject(error) : resolve())));
    this.pendingWrite = { lines: [line], written, settle };
    atEndOfTurn('durable', this.writePending);
    return written;
  }

  /** Writes the queued records now (also before a segment is sealed or the journal closed). */
  private readonly writePending = (): void => {
    const pending = this.pendingWrite;
    if (!pending) return;
    this.pendingWrite = null;
    try {
      if (this.fd === null) {
        this.currentPath = join(this.directory, `segment-${this.instance}-${this.sequence++}.ndjson`);
        this.fd = openSync(this.currentPath, 'a');
      }
      writeSync(this.fd, pending.lines.join(''));
      pending.settle();
    } catch (error) {
      pending.settle(error as Error);
    }
  };

  /** Closes the open segment: everything appended so far is in the returned checkpoint. */
  seal(): string[] {
    this.writePending();
    if (this.fd !== null) {
      closeSync(this.fd);
      this.sealed.push(this.currentPath!);
      this.fd = null;
      this.currentPath = null;
    }
    return [...this.sealed];
  }

  /** Deletes segments whose records are committed to the database. */
  discard(paths: string[]): void {
    for (const path of paths) {
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
      const index = this.sealed.indexOf(path);
      if (index >= 0) this.sealed.splice(index, 1);
    }
  }

  close(): void {
    this.writePending();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** Segments left by processes that are no longer running (crashed or killed). */
  orphanedSegments(): string[] {
    if (!existsSync(this.directory)) return [];
    return readdirSync(this.directory)
      .filter((name) => {
        const match = SEGMENT.exec(name);
        if (!match || `${match[1]}-${match[2]}` === this.instance) return false;
        // Same pid, other instance: an earlier incarnation (containers reuse pid 1).
        const pid = Number(match[1]);
        return pid === process.pid || !processAlive(pid);
      })
      .map((name) => join(this.directory, name));
  }

  static read(path: string): SpendRecord[] {
    const records: SpendRecord[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        records.push(deserialize(line));
      } catch {
        // A torn final line from a crash mid-write: its response never completed either.
      }
    }
    return records;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function serialize(record: SpendRecord): string {
  return JSON.stringify({ ...record, costPico: record.costPico.toString(), chargePico: record.chargePico.toString() });
}

function deserialize(line: string): SpendRecord {
  const parsed = JSON.parse(line) as Omit<SpendRecord, 'costPico' | 'chargePico'> & { costPico: string; chargePico?: string };
  // A segment journaled before charges existed was charged its cost.
  return { ...parsed, costPico: BigInt(parsed.costPico), chargePico: BigInt(parsed.chargePico ?? parsed.costPico) };
}
