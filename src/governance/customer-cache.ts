/**
 * @module The customers one process is serving: a bounded LRU of records in front of the
 * store. A cached customer is answered synchronously (the hot path); one not seen yet costs
 * one indexed read, shared by every request that misses on the same id meanwhile. Nothing
 * that must survive lives only here: the blocked flag and budget link are in the store, and
 * spend and reservations in the spend book and the ledger, so eviction loses nothing.
 */
import { LRUCache } from 'lru-cache';
import type { CustomerRecord } from './records';

/** Where records come from on a miss (the store; it also seeds the customer's counters). */
export interface CustomerSource {
  /** The stored customer, or null when there is none. */
  find(userId: string): Promise<CustomerRecord | null>;
  /** The stored customer, inserted first when unknown (insert … on conflict do nothing). */
  findOrCreate(userId: string, now: Date): Promise<CustomerRecord>;
}

/**
 * The customer was read, but its counters could not be seeded (the shared counters did not
 * answer). Carries the record, so the caller still knows whether it is blocked, and leaves
 * it uncached, so the next request seeds again.
 */
export class CustomerCountersUnavailable extends Error {
  constructor(
    readonly record: CustomerRecord,
    cause: Error,
  ) {
    super(`the spend counters of Customer=${record.userId} could not be read: ${cause.message}`);
  }
}

const NO_SOURCE: CustomerSource = {
  find: async () => null,
  findOrCreate: async () => {
    throw new Error('no customer store attached');
  },
};

export const DEFAULT_CUSTOMER_CACHE_SIZE = 100_000;

export class CustomerCache {
  private readonly records: LRUCache<string, CustomerRecord>;
  /** Reads in flight, by id: concurrent misses share one. */
  private readonly loading = new Map<string, Promise<CustomerRecord | null>>();
  private source: CustomerSource = NO_SOURCE;

  constructor(readonly maxSize = DEFAULT_CUSTOMER_CACHE_SIZE) {
    this.records = new LRUCache({ max: maxSize });
  }

  attach(source: CustomerSource): void {
    this.source = source;
  }

  /** The cached record (marks it recently used), or undefined: never reads the store. */
  get(userId: string): CustomerRecord | undefined {
    return this.records.get(userId);
  }

  /** The cached record without marking it used (admin listings must not churn the cache). */
  peek(userId: string): CustomerRecord | undefined {
    return this.records.peek(userId);
  }

  has(userId: string): boolean {
    return this.records.has(userId);
  }

  set(record: CustomerRecord): void {
    this.records.set(record.userId, record);
  }

  delete(userId: string): void {
    this.records.delete(userId);
  }

  get size(): number {
    return this.records.size;
  }

  /** Ids of the cached customers (to reload after missed change notices). */
  cachedIds(): string[] {
    return [...this.records.keys()];
  }

  /** Cached records, without touching their recency. */
  *cached(): IterableIterator<CustomerRecord> {
    for (const record of this.records.values()) yield record;
  }

  /** Whether this process holds the customer or is reading it (a change notice concerns it). */
  tracks(userId: string): boolean {
    return this.records.has(userId) || this.loading.has(userId);
  }

  /** The customer, from the cache or else the store; null when it does not exist. */
  async find(userId: string): Promise<CustomerRecord | null> {
    return this.records.get(userId) ?? this.load(userId, () => this.source.find(userId));
  }

  /** The customer, from the cache or the store, created there first when unknown. */
  async findOrCreate(userId: string, now: Date): Promise<CustomerRecord> {
    const cached = this.records.get(userId);
    if (cached) return cached;
    const found = await this.load(userId, async () => this.source.findOrCreate(userId, now));
    // A find() that was in flight found nothing; this call must create it.
    return found ?? ((await this.load(userId, () => this.source.findOrCreate(userId, now))) as CustomerRecord);
  }

  /**
   * Applies a record read from the store after a change (null: it is gone) to a customer
   * this process tracks; a read in flight is superseded. Ids not tracked are ignored.
   */
  replace(userId: string, record: CustomerRecord | null): void {
    if (!this.tracks(userId)) return;
    this.loading.delete(userId);
    this.store(userId, record);
  }

  private load(userId: string, read: () => Promise<CustomerRecord | null>): Promise<CustomerRecord | null> {
    const inFlight = this.loading.get(userId);
    if (inFlight) return inFlight;
    const promise = read().then(
      (record) => {
        // A newer read (refresh) replaced this one: its answer wins.
        if (this.loading.get(userId) !== promise) return this.records.get(userId) ?? record;
        this.loading.delete(userId);
        this.store(userId, record);
        return this.records.get(userId) ?? null;
      },
      (error: unknown) => {
        if (this.loading.get(userId) === promise) this.loading.delete(userId);
        throw error;
      },
    );
    this.loading.set(userId, promise);
    return promise;
  }

  private store(userId: string, record: CustomerRecord | null): void {
    const current = this.records.peek(userId);
    if (!record) {
      this.records.delete(userId);
      return;
    }
    if (current) Object.assign(current, record);
    else this.records.set(userId, record);
  }
}
