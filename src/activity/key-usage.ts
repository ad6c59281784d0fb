/**
 * @module When each virtual key was last used, written cheaply: the registry notes the time
 * in memory on every authentication (a Map set), and this writes the latest of each key in
 * one statement every few seconds. The stored value lags real use by up to that interval.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '../observability/logger';

export class KeyUsageRecorder {
  private pending = new Map<string, number>();
  /** The batch being written: still unknown to the store until its statement commits. */
  private writing = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly orm: MikroORM,
    private readonly logger: Logger,
    private readonly flushIntervalMs = 5000,
  ) {}

  /** Called on the hot path: no I/O. */
  used(keyId: string, atMs: number): void {
    this.pending.set(keyId, atMs);
  }

  /** Not yet written, so readers can take the later of this and the stored value. */
  pendingUse(keyId: string): number | undefined {
    const queued = this.pending.get(keyId);
    const written = this.writing.get(keyId);
    if (queued === undefined) return written;
    return written === undefined || queued > written ? queued : written;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (!this.pending.size) return;
    const rows = [...this.pending].map(([id, at]) => ({ id, at: new Date(at).toISOString() }));
    this.writing = this.pending;
    this.pending = new Map();
    try {
      await this.orm.em.getConnection().getKnex().raw(
        `update api_keys set last_used_at = greatest(coalesce(api_keys.last_used_at, x.at), x.at)
         from jsonb_to_recordset(?::jsonb) as x(id text, at timestamptz) where api_keys.id = x.id`,
        [JSON.stringify(rows)],
      );
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not record when keys were last used');
    } finally {
      this.writing = new Map();
    }
  }
}
