// Preloaded into a spawned gateway (NODE_OPTIONS=--import): every 2 ms timer turn, the CPU
// time the main thread ran since the previous turn (Linux schedstat: time on a core, not time
// waiting for one), so a test can tell "this process computed for 300 ms in one go" from
// "the machine was busy". Turns that ran over 5 ms are appended as `<epoch ms> <ran ms>` lines
// to $TOLLGATE_TEST_LOOP_PROBE. Without schedstat, the turn's wall-clock lag stands in.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setInterval } from 'node:timers';
import { isMainThread } from 'node:worker_threads';

const out = process.env.TOLLGATE_TEST_LOOP_PROBE;
if (isMainThread && out) {
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  const hasSchedstat = existsSync(schedstat);
  const ranNs = () => Number(readFileSync(schedstat, 'utf8').split(' ')[0]);
  let lastWall = performance.now();
  let lastRan = hasSchedstat ? ranNs() : 0;
  setInterval(() => {
    const wall = performance.now();
    const ran = hasSchedstat ? ranNs() : 0;
    const ranMs = hasSchedstat ? (ran - lastRan) / 1e6 : wall - lastWall - 2;
    if (ranMs > 5) appendFileSync(out, `${Date.now()} ${ranMs.toFixed(1)}\n`);
    lastWall = wall;
    lastRan = ran;
  }, 2).unref();
}
