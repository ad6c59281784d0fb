import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { boundHeapGrowth } from './heap-growth';

/**
 * A process that holds a live set and keeps "requests in flight" long enough for their objects
 * to be promoted, then drops them: the shape of a gateway's heap under load. It prints the
 * largest old space it saw, over the old space that the live set alone fills after a full GC.
 * `percent` is applied with setFlagsFromString after start-up, as boundHeapGrowth does it.
 */
const CHURN = `
const v8 = require('node:v8');
const percent = Number(process.argv[1]);
if (percent) v8.setFlagsFromString('--heap-growing-percent=' + percent);
const live = Array.from({ length: 400000 }, (_, i) => ({ i, s: 'x' + i }));
globalThis.gc();
const oldSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_size;
const base = oldSpace();
let max = base;
const inFlight = [];
const started = Date.now();
(function turn() {
  inFlight.push(Array.from({ length: 2000 }, (_, i) => ({ i, t: 'y' + i })));
  if (inFlight.length > 50) inFlight.shift();
  max = Math.max(max, oldSpace());
  if (Date.now() - started < 2500) setImmediate(turn);
  else console.log(JSON.stringify({ growth: max / base, live: live.length }));
})();
`;

function churn(percent: number): number {
  const result = spawnSync(process.execPath, ['--expose-gc', '-e', CHURN, String(percent)], { encoding: 'utf8', timeout: 60_000 });
  expect(result.status, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { growth: number }).growth;
}

describe('boundHeapGrowth', () => {
  it('leaves the factor to a --heap-growing-percent given to node, in either spelling', () => {
    expect(boundHeapGrowth(50, ['--heap-growing-percent=20'])).toEqual({ by: 'node-flag' });
    expect(boundHeapGrowth(50, ['--heap_growing_percent=20'])).toEqual({ by: 'node-flag' });
    expect(boundHeapGrowth(50, ['--heap-growing-percent-x'])).toEqual({ percent: 50, by: 'config' });
  });

  it('leaves the factor to V8 at 0', () => {
    expect(boundHeapGrowth(0, [])).toEqual({ by: 'v8' });
  });

  it('set after start-up, bounds how far the old space grows past its live set under churn', () => {
    const unbounded = churn(0);
    const bounded = churn(50);
    // Measured: V8 alone lets this churn grow the old space to ~4 × the live set; at 50 % it
    // stays near 2 × (the requests in flight are live too, and pages are freed after a
    // collection, not at its end).
    expect(bounded).toBeLessThan(2.8);
    expect(unbounded).toBeGreaterThan(bounded + 1);
  }, 30_000);
});
