/**
 * @module Virtual keys: generated once, shown once, stored only as an HMAC-SHA256 keyed with
 * the server's key secret (a row from before keeps its plain sha256 until the key's next use,
 * which rewrites it). Scope
 * `inference` may call the data plane only; `admin` may also use the control plane.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiKeyEntity } from '../store/entities';
import type { KeyRecord } from '../governance/registry';
import type { KeyScope } from '../governance/records';
import { GatewayError } from '../shared/errors';
import type { ServiceContext } from './context';
import { invalid, parseOptionalString } from './validation';

export interface GeneratedKey {
  key: string;
  record: KeyRecord;
  createdAt: Date;
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

  async generate(alias: string | null, scope: KeyScope): Promise<GeneratedKey> {
    if (scope !== 'admin' && scope !== 'inference') throw invalid('scope', 'must be "inference" or "admin"');
    parseOptionalString('key_alias', alias); // the one place its type and length are checked
    const key = `sk-tg-${randomBytes(24).toString('base64url')}`;
    const record: KeyRecord = { id: randomUUID(), keyHash: this.ctx.registry.hashKey(key), alias, scope, revoked: false };
    const createdAt = this.ctx.now();
    await this.ctx.orm.em.fork().insert(ApiKeyEntity, { id: record.id, keyHash: record.keyHash, keyPrefix: key.slice(0, 10), alias, scope, createdAt, revokedAt: null });
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
    await this.ctx.invalidation.publish([{ kind: 'key', id: record.keyHash }]);
    return record;
  }

  list(): KeyRecord[] {
    return [...this.ctx.registry.keys.values()];
  }
}
