import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tuneMalloc } from './malloc-tuning';

/** The built module (`npm test` builds first): the child process below runs plain node. */
const BUILT = join(__dirname, '../../dist/src/server/malloc-tuning.js');

/**
 * A process that frees one 4 MiB buffer (so glibc raises its threshold to 4 MiB, unless it is
 * fixed), then fills 48 blocks of 256 KiB and frees every other one (those kept between them,
 * and the last, keep the freed ones from joining the heap's top, which glibc would give back).
 * It prints how much of the 6 MiB freed is still resident: from an arena, all of it (free pages
 * between live ones stay until `malloc_trim`); mapped each on its own, none.
 * `argv[1]`: 'tuned' calls tuneMalloc(128) first; 'trimmed' does not, but releases free pages after.
 */
const FRAGMENT = `
const { tuneMalloc } = require(${JSON.stringify(BUILT)});
const mode = process.argv[1];
const malloc = tuneMalloc(mode === 'tuned' ? 128 : 0);
const settle = () => new Promise((resolve) => { globalThis.gc(); setTimeout(() => { globalThis.gc(); setTimeout(resolve, 25); }, 25); });
(async () => {
  let big = Buffer.allocUnsafeSlow(4 << 20).fill(1);
  big = null;
  await settle();
  const blocks = [];
  for (let i = 0; i < 48; i++) blocks.push(Buffer.allocUnsafeSlow(256 << 10).fill(1));
  await settle();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 48; i += 2) blocks[i] = null;
  const freedMb = 24 * 0.25;
  // V8 frees dead buffers' memory in the background after a collection: wait for it, a while.
  let residentMb = freedMb;
  for (let tries = 0; tries < 40 && residentMb > 0.5; tries++) {
    await settle();
    if (mode === 'trimmed') malloc.releaseFreePages();
    residentMb = freedMb - (before - process.memoryUsage().rss) / 2 ** 20;
  }
  console.log(JSON.stringify({ residentMb, tuning: malloc.tuning, kept: blocks.filter(Boolean).length }));
})();
`;

function residentAfterFree(mode: 'tuned' | 'untouched' | 'trimmed'): { residentMb: number; tuning: unknown } {
  const result = spawnSync(process.execPath, ['--expose-gc', '-e', FRAGMENT, mode], { encoding: 'utf8', timeout: 60_000 });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { residentMb: number; tuning: unknown };
}

/** Whether this process runs on glibc (elsewhere tuneMalloc does nothing at all). */
const onGlibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

describe.runIf(onGlibc)('tuneMalloc', () => {
  it('leaves the threshold to GLIBC_TUNABLES, and to glibc when set to 0 or when mallopt refuses', () => {
    const calls: number[][] = [];
    const libc = (answer: number) => () => ({ mallopt: (param: number, value: number) => (calls.push([param, value]), answer), mallocTrim: () => 1 });
    expect(tuneMalloc(128, { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536' }, libc(1)).tuning).toEqual({ by: 'glibc-tunables' });
    expect(tuneMalloc(0, {}, libc(1)).tuning).toEqual({ by: 'glibc' });
    expect(calls).toEqual([]);
    expect(tuneMalloc(128, { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, libc(0)).tuning).toEqual({ by: 'glibc', reason: 'mallopt refused the value' });
    expect(calls).toEqual([[-3, 131072]]);
    const unloadable = () => {
      throw new Error('libc.so.6: cannot open shared object file');
    };
    expect(tuneMalloc(128, {}, unloadable).tuning).toEqual({ by: 'glibc', reason: 'libc not callable: libc.so.6: cannot open shared object file' });
  });

  it('gives freed blocks back at once when the threshold is fixed, and after malloc_trim when not', () => {
    const untouched = residentAfterFree('untouched');
    expect(untouched.tuning).toEqual({ by: 'glibc' });
    expect(untouched.residentMb).toBeGreaterThan(4); // glibc's raised threshold put the blocks in an arena
    const tuned = residentAfterFree('tuned');
    expect(tuned.tuning).toEqual({ mmapThresholdKb: 128, by: 'config' });
    expect(tuned.residentMb).toBeLessThan(1);
    expect(residentAfterFree('trimmed').residentMb).toBeLessThan(1);
  });
});
