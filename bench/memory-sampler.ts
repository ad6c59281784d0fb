/**
 * A preload that says what a process's peak RSS is made of (issue #11's peak under load):
 * `BENCH_NODE_FLAGS="--require ./dist/bench/memory-sampler.js" node dist/bench/run.js`.
 * Every 250 ms the main thread reads its RSS; whenever it is the highest yet, it writes
 * `BENCH_MEMORY_DIR/peak-<pid>.json` (default the OS temp dir): V8's heap spaces, the
 * mappings of /proc/self/smaps grouped by kind, and the twelve largest. Each worker thread
 * writes `worker-<pid>.json` with its isolate's heap at its largest. Reading smaps costs a few
 * ms, so a sitting run with it is for memory, not CPU.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

const SAMPLE_MS = 250;
const DIR = process.env.BENCH_MEMORY_DIR ?? tmpdir();
const MB = 1024 * 1024;

interface Mapping {
  kb: number;
  rssKb: number;
  perms: string;
  name: string;
}

function mappings(): Mapping[] {
  const list: Mapping[] = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (range) {
      list.push({ kb: (parseInt(range[2]!, 16) - parseInt(range[1]!, 16)) / 1024, rssKb: 0, perms: range[3]!, name: range[4]! });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && list.length) list[list.length - 1]!.rssKb = Number(rss[1]);
  }
  return list;
}

/**
 * A mapping's kind, by its shape: glibc reserves a thread's arena in 64 MB, and PGlite's WASM memory is one 128 MB mapping (its INITIAL_MEMORY).
 */
function kindOf(mapping: Mapping): string {
  if (mapping.name === '[heap]') return 'brk heap (glibc main arena)';
  if (mapping.name.startsWith('/')) return mapping.name === process.execPath ? 'the node binary (file pages)' : 'other files';
  if (mapping.name) return mapping.name;
  if (mapping.kb === 65536) return 'anonymous 64 MB (glibc thread arenas)';
  if (mapping.kb === 131072) return 'anonymous 128 MB (WASM memory)';
  return 'anonymous, other (V8 heaps, glibc, compiled WASM)';
}

function spaces(): [string, number, number][] {
  return getHeapSpaceStatistics()
    .filter((space) => space.space_size > 0)
    .map((space) => [space.space_name, Math.round(space.space_size / MB), Math.round(space.space_used_size / MB)]);
}

function sampleMainThread(): void {
  let highest = 0;
  setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss <= highest) return;
    highest = rss;
    const all = mappings();
    const kinds: Record<string, number> = {};
    for (const mapping of all) {
      const kind = kindOf(mapping);
      kinds[kind] = (kinds[kind] ?? 0) + Math.round(mapping.rssKb / 1024);
    }
    const largest = all.sort((a, b) => b.rssKb - a.rssKb).slice(0, 12).map((m) => ({ mb: Math.round(m.kb / 1024), rssMb: Math.round(m.rssKb / 1024), perms: m.perms, name: m.name }));
    const peak = { at: new Date().toISOString(), rssMb: Math.round(rss / MB), heapSpacesMb: spaces(), kindsMb: kinds, largest };
    writeFileSync(join(DIR, `peak-${process.pid}.json`), JSON.stringify(peak, null, 1));
  }, SAMPLE_MS).unref();
}

function sampleWorkerThread(): void {
  let largest = 0;
  setInterval(() => {
    const heap = getHeapStatistics();
    if (heap.total_heap_size <= largest) return;
    largest = heap.total_heap_size;
    const sample = { at: new Date().toISOString(), heapMb: Math.round(largest / MB), usedMb: Math.round(heap.used_heap_size / MB), externalMb: Math.round(heap.external_memory / MB), heapSpacesMb: spaces() };
    writeFileSync(join(DIR, `worker-${process.pid}.json`), JSON.stringify(sample, null, 1));
  }, SAMPLE_MS).unref();
}

if (isMainThread) sampleMainThread();
else sampleWorkerThread();
