/**
 * @module Crash journal for metered requests not yet in the database. Each record is appended
 * (one write syscall, no fsync) before the response's last byte leaves, so a `kill -9` of
 * the process loses nothing: the next start replays the orphaned segments into the ledger
 * (inserts are idempotent by request id). Segments are deleted once their batch commits.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { SpendRecord } from './types';

const SEGMENT = /^segment-(\d+)-([0-9a-f]+)-(\d+)\.ndjson$/;

export class Journal {
  private readonly instance = `${process.pid}-${randomBytes(4).toString('hex')}`;
  private sequence = 0;
  private fd: number | null = null;
  private currentPath: string | null = null;
  private readonly sealed: string[] = [];

  constructor(private readonly directory: string) {
    mkdirSync(directory, { recursive: true });
  }

  append(record: SpendRecord): void {
    if (this.fd === null) {
      this.currentPath = join(this.directory, `segment-${this.instance}-${this.sequence++}.ndjson`);
      this.fd = openSync(this.currentPath, 'a');
    }
    writeSync(this.fd, serialize(record) + '\n');
  }

  /** Closes the open segment: everything appended so far is in the returned checkpoint. */
  seal(): string[] {
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
