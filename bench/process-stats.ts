/**
 * @module What a benchmark target costs the machine, read from /proc (Linux): CPU time of a
 * process and all its descendants, and resident memory (now and peak). No sampling thread:
 * CPU is a difference of two readings, peak RSS is the kernel's own high-water mark.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function readStat(pid: number): { ppid: number; cpuTicks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null; // the process ended between listing and reading
  }
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)]);
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const next = queue.pop()!;
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** CPU milliseconds (user + system) used so far by `pid` and its descendants. */
export function cpuMilliseconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) ticks += readStat(member)?.cpuTicks ?? 0;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) / 1024 : 0;
}

/** Resident memory of the tree now, in MB. */
export function rssMegabytes(pid: number): number {
  return processTree(pid).reduce((sum, member) => sum + statusField(member, 'VmRSS'), 0);
}

/** Peak resident memory of the tree's processes since they started (or since `resetPeakRss`), in MB. */
export function peakRssMegabytes(pid: number): number {
  return processTree(pid).reduce((sum, member) => sum + statusField(member, 'VmHWM'), 0);
}

/**
 * Restarts the kernel's high-water mark of the tree's processes at their current RSS (writing 5
 * to /proc/<pid>/clear_refs, Linux 4.0+), so that a later `peakRssMegabytes` is the peak of what
 * ran since: the load's, not start-up's. Returns false where the kernel refused.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    for (const member of processTree(pid)) writeFileSync(`/proc/${member}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until the tree has gone quiet: `quietWindows` windows of `windowMs` in a row, each
 * using at most `maxCoreFraction` of one core (at least one clock tick; a process under
 * `--cpu-prof` never drops below its sampler's few percent). Work a load leaves behind (webhook deliveries, ledger
 * flushes) is part of what its requests cost; reading CPU before it is done under-counts them.
 * Resolves with the milliseconds waited (at most `timeoutMs`).
 */
export async function waitUntilQuiet(pid: number, { windowMs = 500, quietWindows = 2, maxCoreFraction = 0.02, timeoutMs = 180_000 } = {}): Promise<number> {
  const quietMs = Math.max(1000 / TICKS_PER_SECOND, windowMs * maxCoreFraction);
  const started = Date.now();
  let quiet = 0;
  let before = cpuMilliseconds(pid);
  while (quiet < quietWindows && Date.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = cpuMilliseconds(pid);
    quiet = now - before <= quietMs ? quiet + 1 : 0;
    before = now;
  }
  return Date.now() - started;
}
