/**
 * The cache's own rules, with a source whose reads the test answers by hand: concurrent
 * misses share one read, a change notice supersedes a read that was already in flight, and
 * the least recently used customer is the one evicted.
 */
import { describe, expect, it } from 'vitest';
import { CustomerCache, type CustomerSource } from './customer-cache';
import type { CustomerRecord } from './records';

function record(userId: string, blocked = false): CustomerRecord {
  const at = new Date(0);
  return { userId, alias: null, blocked, budgetId: null, allowedModelRegion: null, defaultModel: null,
  prepaid: false, createdAt: at, updatedAt: at };
}

/** Every read waits until the test answers it. */
class ManualSource implements CustomerSource {
  readonly reads: { userId: string; answer: (value: CustomerRecord | null) => void }[] = [];
  find(userId: string): Promise<CustomerRecord | null> {
    return new Promise((resolve) => this.reads.push({ userId, answer: resolve }));
  }
  async findOrCreate(userId: string): Promise<CustomerRecord> {
    return (await this.find(userId)) ?? record(userId);
  }
}

describe('CustomerCache', () => {
  it('serves concurrent misses for one id with one read', async () => {
    const source = new ManualSource();
    const cache = new CustomerCache(10);
    cache.attach(source);
    const pending = [cache.find('a'), cache.find('a'), cache.findOrCreate('a', new Date())];
    expect(source.reads).toHaveLength(1);
    source.reads[0]!.answer(record('a'));
    const [x, y, z] = await Promise.all(pending);
    expect(x).toBe(y);
    expect(y).toBe(z);
    expect(cache.get('a')).toBe(x);
    expect(source.reads).toHaveLength(1);
  });

  it('lets a change notice supersede a read in flight that may predate the change', async () => {
    const source = new ManualSource();
    const cache = new CustomerCache(10);
    cache.attach(source);
    const stale = cache.find('b');
    cache.replace('b', record('b', true)); // read after the change: blocked
    source.reads[0]!.answer(record('b', false)); // the read from before it answers late
    await stale;
    expect(cache.get('b')?.blocked).toBe(true);
  });

  it('ignores a notice about a customer it neither holds nor reads, and evicts the least recently used', async () => {
    const cache = new CustomerCache(2);
    cache.replace('nobody', record('nobody'));
    expect(cache.has('nobody')).toBe(false);
    cache.set(record('c'));
    cache.set(record('d'));
    cache.get('c');
    cache.set(record('e'));
    expect(cache.cachedIds().sort()).toEqual(['c', 'e']);
  });
});
