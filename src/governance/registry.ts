/**
 * @module The customer/budget/key cache the hot path reads. One per process; the services
 * write the store first and then update this, so a change applies to the very next request.
 * Budgets and keys are few and fully loaded; customers are many, so only those this process
 * serves are kept (a bounded LRU, `tollgate.customer_cache_size`), read from the store on a miss.
 */
import { createHash, createHmac } from 'node:crypto';
import { CustomerCache, DEFAULT_CUSTOMER_CACHE_SIZE } from './customer-cache';
import { CreditBook } from './credits';
import type { BudgetRecord, CustomerRecord, KeyLimits, KeyScope, Principal } from './records';

/** How the master key is named in the ledger, the APIs and webhooks (it has no key row). */
export const MASTER_KEY_ID = 'master';

/**
 * The secret key hashes are keyed with: `tollgate.key_secret` / TOLLGATE_KEY_SECRET, else
 * derived from the master key, so one node needs no new setting. A database dump alone then
 * gives no key away (no offline guessing of a weak key without the secret); the price of the
 * derived default is that changing the master key invalidates every virtual key, unless
 * key_secret is set first.
 */
export function keySecretFor(masterKey: string, configured?: string): string {
  return configured || createHmac('sha256', masterKey).update('tollgate key hashing v1').digest('hex');
}

/** Rows written before keyed hashing hold the plain sha256: still verified, never written any more. */
function legacyKeyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export interface KeyRecord {
  id: string;
  keyHash: string;
  alias: string | null;
  scope: KeyScope;
  revoked: boolean;
  /** The customer a bound key always acts for (null: the request names it). */
  customerId: string | null;
  limits: KeyLimits | null;
}

export class Registry {
  readonly budgets = new Map<string, BudgetRecord>();
  readonly customers: CustomerCache;
  /** Prepaid customers' grants (read when first admitted, reloaded on 'credits' notices). */
  readonly credits: CreditBook;
  readonly keys = new Map<string, KeyRecord>();
  private readonly masterKeyHash: string;
  private readonly keySecret: string;
  /** Reloads of entities another process changed, still reading the store. */
  private readonly pendingReloads = new Set<Promise<void>>();
  /** Told when keys were revoked or reloaded (the control plane closes revoked keys' sockets). */
  private readonly keyListeners = new Set<() => void>();
  /** Told of each use of a virtual key (key-usage.ts batches these into last_used_at). */
  onKeyUsed: ((keyId: string, atMs: number) => void) | null = null;
  /** Told when a key is found by its legacy plain hash, with its keyed hash, to rewrite the row. */
  onLegacyKey: ((record: KeyRecord, keyedHash: string) => void) | null = null;

  constructor(
    masterKey: string,
    /** litellm_settings.max_end_user_budget_id; may name a budget that does not exist yet. */
    readonly defaultBudgetId: string | null,
    customerCacheSize = DEFAULT_CUSTOMER_CACHE_SIZE,
    keySecret?: string,
  ) {
    this.customers = new CustomerCache(customerCacheSize);
    this.credits = new CreditBook(customerCacheSize);
    this.keySecret = keySecretFor(masterKey, keySecret);
    this.masterKeyHash = this.hashKey(masterKey);
  }

  /** HMAC-SHA256 of a key with the server's key secret: what api_keys.key_hash holds. */
  hashKey(key: string): string {
    return createHmac('sha256', this.keySecret).update(key).digest('hex');
  }

  /**
   * Hashes of the bearer keys seen lately: every request would otherwise compute an HMAC of
   * the same few keys. Only the hash is cached, never a verdict: revocation and lookup happen
   * on every request; the hash of a key never changes (the secret is fixed for the process).
   * Bounded: a flood of random keys only evicts the oldest.
   */
  private readonly bearerHashes = new Map<string, string>();
  private static readonly BEARER_HASH_CACHE = 1024;

  private hashBearer(bearer: string): string {
    let hash = this.bearerHashes.get(bearer);
    if (hash === undefined) {
      hash = this.hashKey(bearer);
      if (this.bearerHashes.size >= Registry.BEARER_HASH_CACHE) this.bearerHashes.delete(this.bearerHashes.keys().next().value!);
      this.bearerHashes.set(bearer, hash);
    }
    return hash;
  }

  /** The key record of a raw key, keyed hash first, then a legacy row's plain hash. */
  findKey(bearer: string, keyedHash = this.hashKey(bearer)): KeyRecord | undefined {
    const keyed = this.keys.get(keyedHash);
    if (keyed) return keyed;
    const legacy = this.keys.get(legacyKeyHash(bearer));
    if (legacy) this.onLegacyKey?.(legacy, keyedHash);
    return legacy;
  }

  /**
   * Registers a reload of changed entities. It is registered the moment the change notice
   * arrives, so a request that comes in after the notice waits for it (`refreshed`).
   */
  trackReload(reload: Promise<void>): void {
    const tracked = reload.finally(() => this.pendingReloads.delete(tracked));
    this.pendingReloads.add(tracked);
  }

  /** Resolves once every reload registered so far has finished (at once when there is none). */
  async refreshed(): Promise<void> {
    while (this.pendingReloads.size) await Promise.allSettled([...this.pendingReloads]);
  }

  /** Calls `listener` after every change to the keys; returns the unsubscribe. */
  onKeysChanged(listener: () => void): () => void {
    this.keyListeners.add(listener);
    return () => this.keyListeners.delete(listener);
  }

  /** Called by whoever changed `keys` (a revocation here, a reload of another process's change). */
  keysChanged(): void {
    for (const listener of this.keyListeners) listener();
  }

  /** Resolves a bearer key to who is calling, or null for an unknown or revoked key. */
  authenticate(bearer: string | null): Principal | null {
    if (!bearer) return null;
    const keyHash = this.hashBearer(bearer);
    if (keyHash === this.masterKeyHash) return { kind: 'master', keyHash, alias: null, scope: 'admin', keyId: null, customerId: null, keyLimits: null };
    const key = this.findKey(bearer, keyHash);
    if (!key || key.revoked) return null;
    this.onKeyUsed?.(key.id, Date.now());
    return { kind: 'virtual', keyHash: key.keyHash, alias: key.alias, scope: key.scope, keyId: key.id, customerId: key.customerId, keyLimits: key.limits };
  }

  /** The budget in force for a customer: its own, else the default budget (if it exists). */
  effectiveBudget(customer: CustomerRecord | undefined): BudgetRecord | null {
    const id = customer?.budgetId ?? this.defaultBudgetId;
    return id ? (this.budgets.get(id) ?? null) : null;
  }

  /** Whether the customer is served only from prepaid credits: it says so, or its budget does. */
  isPrepaid(customer: CustomerRecord | undefined): boolean {
    return customer?.prepaid === true || this.effectiveBudget(customer)?.prepaid === true;
  }

  /** Whether the configured default budget id names a budget that does not exist. */
  defaultBudgetMissing(): boolean {
    return this.defaultBudgetId !== null && !this.budgets.has(this.defaultBudgetId);
  }

  /** Cached customers on a budget (the store has them all: see store/customer-store.ts). */
  cachedCustomersOnBudget(budgetId: string): CustomerRecord[] {
    const result: CustomerRecord[] = [];
    for (const customer of this.customers.cached()) if (customer.budgetId === budgetId) result.push(customer);
    return result;
  }
}
