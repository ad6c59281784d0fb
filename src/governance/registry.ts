/**
 * @module The customer/budget/key cache the hot path reads. One per process; the services
 * write the store first and then update this, so a change applies to the very next request.
 */
import { createHash, createHmac } from 'node:crypto';
import type { BudgetRecord, CustomerRecord, KeyScope, Principal } from './records';

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
}

export class Registry {
  readonly budgets = new Map<string, BudgetRecord>();
  readonly customers = new Map<string, CustomerRecord>();
  readonly keys = new Map<string, KeyRecord>();
  private readonly masterKeyHash: string;
  private readonly keySecret: string;
  /** Reloads of entities another process changed, still reading the store. */
  private readonly pendingReloads = new Set<Promise<void>>();
  /** Told when a key is found by its legacy plain hash, with its keyed hash, to rewrite the row. */
  onLegacyKey: ((record: KeyRecord, keyedHash: string) => void) | null = null;

  constructor(
    masterKey: string,
    /** litellm_settings.max_end_user_budget_id; may name a budget that does not exist yet. */
    readonly defaultBudgetId: string | null,
    keySecret?: string,
  ) {
    this.keySecret = keySecretFor(masterKey, keySecret);
    this.masterKeyHash = this.hashKey(masterKey);
  }

  /** HMAC-SHA256 of a key with the server's key secret: what api_keys.key_hash holds. */
  hashKey(key: string): string {
    return createHmac('sha256', this.keySecret).update(key).digest('hex');
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

  /** Resolves a bearer key to who is calling, or null for an unknown or revoked key. */
  authenticate(bearer: string | null): Principal | null {
    if (!bearer) return null;
    const keyHash = this.hashKey(bearer);
    if (keyHash === this.masterKeyHash) return { kind: 'master', keyHash, alias: null, scope: 'admin', keyId: null };
    const key = this.findKey(bearer, keyHash);
    if (!key || key.revoked) return null;
    return { kind: 'virtual', keyHash: key.keyHash, alias: key.alias, scope: key.scope, keyId: key.id };
  }

  /** The budget in force for a customer: its own, else the default budget (if it exists). */
  effectiveBudget(customer: CustomerRecord | undefined): BudgetRecord | null {
    const id = customer?.budgetId ?? this.defaultBudgetId;
    return id ? (this.budgets.get(id) ?? null) : null;
  }

  /** Whether the configured default budget id names a budget that does not exist. */
  defaultBudgetMissing(): boolean {
    return this.defaultBudgetId !== null && !this.budgets.has(this.defaultBudgetId);
  }

  customersOnBudget(budgetId: string): CustomerRecord[] {
    const result: CustomerRecord[] = [];
    for (const customer of this.customers.values()) if (customer.budgetId === budgetId) result.push(customer);
    return result;
  }
}
