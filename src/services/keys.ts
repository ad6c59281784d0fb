/**
 * @module Virtual keys: generated once, shown once, stored only as a sha256 hash. Scope
 * `inference` may call the data plane only; `admin` may also use the control plane.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiKeyEntity } from '../store/entities';
import { hashKey, type KeyRecord } from '../governance/registry';
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
  constructor(private readonly ctx: ServiceContext) {}

  async generate(alias: string | null, scope: KeyScope): Promise<GeneratedKey> {
    if (scope !== 'admin' && scope !== 'inference') throw invalid('scope', 'must be "inference" or "admin"');
    parseOptionalString('key_alias', alias); // the one place its type and length are checked
    const key = `sk-tg-${randomBytes(24).toString('base64url')}`;
    const record: KeyRecord = { id: randomUUID(), keyHash: hashKey(key), alias, scope, revoked: false };
    const createdAt = this.ctx.now();
    await this.ctx.orm.em.fork().insert(ApiKeyEntity, { id: record.id, keyHash: record.keyHash, keyPrefix: key.slice(0, 10), alias, scope, createdAt, revokedAt: null });
    this.ctx.registry.keys.set(record.keyHash, record);
    await this.ctx.invalidation.publish([{ kind: 'key', id: record.keyHash }]);
    return { key, record, createdAt };
  }

  /** Revokes by key id, or by the raw key itself. */
  async revoke(idOrKey: string): Promise<KeyRecord> {
    const record = [...this.ctx.registry.keys.values()].find((k) => k.id === idOrKey) ?? this.ctx.registry.keys.get(hashKey(idOrKey));
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
}
