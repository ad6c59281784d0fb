/** Reads a gateway's `GET /metrics` (Prometheus text format) for assertions. */
import { expect } from 'vitest';
import { MASTER_KEY } from './gateway';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export async function scrape(base: string, key = MASTER_KEY): Promise<Sample[]> {
  const response = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${key}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  const samples: Sample[] = [];
  for (const line of (await response.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, label, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[label!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels` (0 when there are none). */
export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** Waits until the process at `base` has at least `count` GraphQL subscriptions listening. */
export async function subscriptionsOpen(base: string, count: number): Promise<void> {
  await expect.poll(async () => total(await scrape(base), 'tollgate_live_subscriptions'), { timeout: 10_000, interval: 25 }).toBeGreaterThanOrEqual(count);
}
