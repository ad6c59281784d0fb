/**
 * @module Where freed native memory goes: glibc's mmap threshold.
 *
 * Node's buffers, V8's compiler zones and the embedded store's WASM runtime are allocated with
 * glibc's malloc, one arena per thread. An allocation at or above the mmap threshold gets its
 * own mapping, returned to the system when it is freed; a smaller one comes from an arena,
 * whose freed pages stay resident. glibc starts the threshold at 128 KiB but raises it to the
 * size of every mapped block freed since (up to 32 MiB), so after start-up (the embedded
 * store's compilation, the migrations check) blocks of hundreds of KiB land in arenas and stay:
 * an idle embedded gateway held 60–70 MB of such arena pages. Fixing the threshold at 128 KiB
 * (`mallopt(M_MMAP_THRESHOLD)`, which also turns the raising off) left 35–45 MB less resident
 * at idle (bench/profiles/README.md, session 13). Socket reads (64 KiB) stay under it, so the
 * hot path maps nothing more: a lower threshold (32 KiB) mapped every read and cut throughput
 * to a third (session 7).
 *
 * What an arena freed below the threshold stays resident until `malloc_trim` hands its free
 * pages back: the idle collection (idle-collection.ts) calls it after its full collection, when
 * nothing is being served.
 *
 * glibc only: elsewhere (musl, macOS, Windows) nothing is done. A `malloc.mmap_threshold` the
 * operator set in GLIBC_TUNABLES wins.
 */

/** M_MMAP_THRESHOLD of glibc's malloc.h. */
const M_MMAP_THRESHOLD = -3;

export type MallocTuning = { mmapThresholdKb: number; by: 'config' } | { by: 'glibc-tunables' | 'glibc' | 'not-glibc'; reason?: string };

export interface TunedMalloc {
  tuning: MallocTuning;
  /** Hands the arenas' free pages back to the system (`malloc_trim(0)`); a no-op off glibc. */
  releaseFreePages: () => void;
}

interface Libc {
  mallopt(param: number, value: number): number;
  mallocTrim(pad: number): number;
}

/** glibc's version string when this process runs on glibc, else undefined (musl, other systems). */
function glibcVersion(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime;
}

/** The C library through koffi (an FFI with prebuilt binaries), loaded only where it is used. */
function loadLibc(): Libc {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as { load(path: string): { func(signature: string): unknown } };
  const libc = koffi.load('libc.so.6');
  return {
    mallopt: libc.func('int mallopt(int param, int value)') as (param: number, value: number) => number,
    mallocTrim: libc.func('int malloc_trim(size_t pad)') as (pad: number) => number,
  };
}

/**
 * Fixes glibc's mmap threshold at `thresholdKb` KiB (0: leave glibc's own). Process-wide and
 * for every arena, the threads started later included; call it once at start-up.
 */
export function tuneMalloc(thresholdKb: number, env: NodeJS.ProcessEnv = process.env, loadC: () => Libc = loadLibc): TunedMalloc {
  if (!glibcVersion()) return { tuning: { by: 'not-glibc' }, releaseFreePages: () => undefined };
  let libc: Libc;
  try {
    libc = loadC();
  } catch (error) {
    return { tuning: { by: 'glibc', reason: `libc not callable: ${(error as Error).message}` }, releaseFreePages: () => undefined };
  }
  const releaseFreePages = () => void libc.mallocTrim(0);
  if (/(^|:)glibc\.malloc\.mmap_threshold=/.test(env.GLIBC_TUNABLES ?? '')) return { tuning: { by: 'glibc-tunables' }, releaseFreePages };
  if (thresholdKb <= 0) return { tuning: { by: 'glibc' }, releaseFreePages };
  if (libc.mallopt(M_MMAP_THRESHOLD, thresholdKb * 1024) !== 1) return { tuning: { by: 'glibc', reason: 'mallopt refused the value' }, releaseFreePages };
  return { tuning: { mmapThresholdKb: thresholdKb, by: 'config' }, releaseFreePages };
}
