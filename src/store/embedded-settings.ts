/**
 * @module How the embedded store's PGlite is started: one place for the gateway's worker
 * (embedded-postgres-worker.ts) and for the bench's embedded required-I/O floor, which must
 * run with the same settings to be a fair floor.
 */

/** shared_buffers of the embedded store (PostgreSQL's default: 128MB). */
const EMBEDDED_SHARED_BUFFERS = '16MB';

/**
 * PGlite's own start parameters plus ours. PostgreSQL's default 128 MB of shared buffers live
 * in the thread's WASM memory, which never shrinks: an embedded gateway's working set fits in
 * far less, and pages it misses are read from the data dir through the OS page cache, not held
 * in the process.
 */
export function embeddedStartParams(pgliteDefaults: readonly string[]): string[] {
  return [...pgliteDefaults, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`];
}

/**
 * V8 limits of the store's thread. The thread moves query bytes between its socket and the
 * WASM instance and keeps little: 12–22 MB used after a bench load, while V8's default young
 * generation let the thread's heap reach 49 MB, resident until the next full collection. A
 * 4 MB young generation kept it at 18–23 MB (bench/profiles/README.md, session 7).
 */
export const EMBEDDED_THREAD_LIMITS = { maxYoungGenerationSizeMb: 4 } as const;
