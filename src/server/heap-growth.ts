/**
 * @module How far V8 lets the heap grow between full collections.
 *
 * Under load most of what a request allocates dies within a few turns, but at thousands of
 * requests a second the young generation fills in milliseconds, so whatever a request still
 * holds across two scavenges is promoted to the old generation and dies there. V8 collects the
 * old generation again only once it has grown to up to 4 × what survived the last full
 * collection. A gateway whose live heap is ~60 MB thus swelled to ~250 MB of old space that was
 * nearly all garbage: `npm run bench` on PostgreSQL + Redis peaked at 356–358 MB RSS. Bounding
 * the growth factor makes V8 collect that garbage sooner: at 50 % the same load peaked at
 * 213–217 MB, and the more frequent (mostly concurrent) full collections left CPU per request
 * within the sitting's noise (bench/profiles/README.md, session 5).
 */
import { setFlagsFromString } from 'node:v8';

/** `--heap-growing-percent`, as Node accepts it (dashes or underscores, with or without a value). */
const FLAG = /^--heap[-_]growing[-_]percent(?:=|$)/;

export type HeapGrowth = { percent: number; by: 'config' } | { by: 'node-flag' } | { by: 'v8' };

/**
 * Sets V8's old-generation growing factor to 1 + percent/100 (0: V8's own heuristics). Its
 * memory controller reads the flag at every full collection, so setting it at start-up, before
 * the gateway allocates, holds for the process's life. A `--heap-growing-percent` the operator
 * gave Node on its command line wins (Node refuses the flag in NODE_OPTIONS).
 */
export function boundHeapGrowth(percent: number, execArgv: readonly string[] = process.execArgv): HeapGrowth {
  if (execArgv.some((arg) => FLAG.test(arg))) return { by: 'node-flag' };
  if (percent <= 0) return { by: 'v8' };
  setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
  return { percent, by: 'config' };
}
