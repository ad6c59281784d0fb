/**
 * @module Virtual keys: generated once, shown once, stored only as an HMAC-SHA256 keyed with
 * the server's key secret (a row from before keeps its plain sha256 until the key's next use,
 * which rewrites it). Scope `inference` may call the data plane only; `admin` may also use the
 * control plane. A key bound to a customer (`customer_id`) is always that customer on the data
 * plane, may carry limits of its own (rpm, lifetime max budget), and reads only its customer's usage.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiKeyEntity } from '../store/entities';
import type { KeyRecord } from '../governance/registry';
import type { KeyLimits, KeyScope } from '../governance/records';
import type { Pico } from '../shared/money';
import { GatewayError } from '../shared/errors';
import type { ServiceContext } from './context';
import { invalid, parseOptionalString } from './validation';

export interface GeneratedKey {
  key: string;
  record: KeyRecord;
  createdAt: Date;
}

/** What binds a key to a customer; field names as REST spells them, for errors. */
export interface KeyBinding {
  customerId?: string | null;
  rpmLimit?: number | null;
  maxBudget?: Pico | null;
}

export interface KeyDetails {
  id: string;
  alias: string | null;
  scope: KeyScope;
  revoked: boolean;
  /** The first characters of the key (sk-tg-…), to tell keys apart; never the key. */
  prefix: string;
  createdAt: Date;
  revokedAt: Date | null;
  /** Written in batches: up to a few seconds behind real use (activity/key-usage.ts). */
  lastUsedAt: Date | null;
  /** The customer a bound key acts for, or null. */
  customerId: string | null;
}

export class KeyService {
  private readonly rehashing = new Set<string>();

  constructor(private readonly ctx: ServiceContext) {
    ctx.registry.onLegacyKey = (record, keyedHash) => void this.rehash(record, keyedHash);
  }

  /** Rewrites a legacy row's plain sha256 as the keyed hash, the first time the key is used. */
  private async rehash(record: KeyRecord, keyedHash: string): Promise<void> {
    if (this.rehashing.has(record.id)) return;
    this.rehashing.add(record.id);
    const legacyHash = record.keyHash;
    try {
      await this.ctx.orm.em.fork().nativeUpdate(ApiKeyEntity, { id: record.id, keyHash: legacyHash }, { keyHash: keyedHash });
      this.ctx.registry.keys.delete(legacyHash);
      record.keyHash = keyedHash;
      this.ctx.registry.keys.set(keyedHash, record);
      await this.ctx.invalidation.publish([{ kind: 'key', id: legacyHash }, { kind: 'key', id: keyedHash }]);
    } catch (error) {
      this.ctx.logger.warn({ err: error, keyId: record.id }, 'could not rewrite a legacy key hash; it is still verified as before');
    } finally {
      this.rehashing.delete(record.id);
    }
  }

  async generate(alias: string | null, scope: KeyScope, binding: KeyBinding = {}): Promise<GeneratedKey> {
    if (scope !== 'admin' && scope !== 'inference') throw invalid('scope', 'must be "inference" or "admin"');
    parseOptionalString('key_alias', alias); // the one place its type and length are checked
    const customerId = parseOptionalString('customer_id', binding.customerId) ?? null;
    const rpmLimit = binding.rpmLimit ?? null;
    const maxBudget = binding.maxBudget ?? null;
    if (customerId !== null) {
      if (scope !== 'inference') throw invalid('scope', 'a key bound to a customer (customer_id) must be scoped to inference');
      if (!(await this.ctx.registry.customers.find(customerId))) throw new GatewayError('not_found', `Customer '${customerId}' does not exist; create it (POST /customer/new) before binding a key to it.`, 'customer_id');
    } else if (rpmLimit !== null || maxBudget !== null) {
      throw invalid(rpmLimit !== null ? 'rpm_limit' : 'max_budget', 'per-key limits apply to keys bound to a customer: pass customer_id too');
    }
    const limits: KeyLimits | null = rpmLimit !== null || maxBudget !== null ? { rpmLimit, maxBudget } : null;
    const key = `sk-tg-${randomBytes(24).toString('base64url')}`;
    const record: KeyRecord = { id: randomUUID(), keyHash: this.ctx.registry.hashKey(key), alias, scope, revoked: false, customerId, limits };
    const createdAt = this.ctx.now();
    await this.ctx.orm.em.fork().insert(ApiKeyEntity, {
      id: record.id, keyHash: record.keyHash, keyPrefix: key.slice(0, 10), alias, scope, customerId, rpmLimit, maxBudgetPico: maxBudget, createdAt, revokedAt: null,
    });
    this.ctx.registry.keys.set(record.keyHash, record);
    await this.ctx.invalidation.publish([{ kind: 'key', id: record.keyHash }]);
    return { key, record, createdAt };
  }

  /** Revokes by key id, or by the raw key itself. */
  async revoke(idOrKey: string): Promise<KeyRecord> {
    const record = [...this.ctx.registry.keys.values()].find((k) => k.id === idOrKey) ?? this.ctx.registry.findKey(idOrKey);
    if (!record) throw new GatewayError('not_found', `No key with id '${idOrKey}'.`, 'id');
    await this.ctx.orm.em.fork().nativeUpdate(ApiKeyEntity, { id: record.id }, { revokedAt: this.ctx.now() });
    record.revoked = true;
    this.ctx.registry.keysChanged();
    await this.ctx.invalidation.publish([{ kind: 'key', id: record.keyHash }]);
    return record;
  }

  list(): KeyRecord[] {
    return [...this.ctx.registry.keys.values()];
  }

  /** Every virtual key with when it was made and last used, newest first. */
  async listDetailed(): Promise<KeyDetails[]> {
    const rows = await this.ctx.orm.em.fork().find(ApiKeyEntity, {}, { orderBy: { createdAt: 'desc', id: 'asc' } });
    return rows.map((row) => {
      const pending = this.ctx.keyUsage.pendingUse(row.id);
      const stored = row.lastUsedAt ?? null;
      const lastUsedAt = pending !== undefined && (!stored || pending > stored.getTime()) ? new Date(pending) : stored;
      return {
        id: row.id,
        alias: row.alias ?? null,
        scope: row.scope as KeyScope,
        revoked: row.revokedAt != null,
        prefix: row.keyPrefix,
        createdAt: row.createdAt,
        revokedAt: row.revokedAt ?? null,
        lastUsedAt,
        customerId: row.customerId ?? null,
      };
    });
  }
}
