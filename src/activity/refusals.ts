/**
 * @module Refused requests, recorded off the request path. The data plane calls `record()`
 * (synchronous, a Map update) where admission refuses; a timer writes the buffer in one
 * statement per second. Bounded in three ways: one row per customer × model × reason ×
 * minute (a count, not a row per retry), at most MAX_BUFFERED rows buffered between flushes
 * (the rest are counted and logged as dropped), and rows older than RETENTION_DAYS pruned.
 * Refusals are never spend: this table is not the ledger and nothing in it is charged.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Registry } from '../governance/registry';
import type { Logger } from '../observability/logger';
import type { GatewayError } from '../shared/errors';
import { picoToDecimalString } from '../shared/money';

export const RETENTION_DAYS = 30;
const MAX_BUFFERED = 10_000;
const PRUNE_EVERY_MS = 3_600_000;

/** What the data plane calls where it refuses a request at admission. */
export interface RefusalSink {
  record(customerId: string | null, model: string, error: GatewayError): void;
}

interface Pending {
  customer_id: string;
  model: string;
  reason: string;
  minute: string;
  status: number;
  limit_type: string | null;
  limit_value: string | null;
  budget_id: string | null;
  message: string;
  count: number;
  first_at: string;
  last_at: string;
}

export class RefusalRecorder implements RefusalSink {
  private buffer = new Map<string, Pending>();
  private dropped = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private lastPrune = 0;

  constructor(
    private readonly orm: MikroORM,
    private readonly registry: Registry,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
    private readonly flushIntervalMs = 1000,
  ) {}

  record(customerId: string | null, model: string, error: GatewayError): void {
    if (customerId === null) return; // admission refuses only requests of a customer
    const at = this.now();
    const minute = new Date(Math.floor(at.getTime() / 60_000) * 60_000).toISOString();
    const key = `${customerId}\u0000${model}\u0000${error.code}\u0000${minute}`;
    const existing = this.buffer.get(key);
    if (existing) {
      existing.count++;
      existing.last_at = at.toISOString();
      existing.message = error.message;
      return;
    }
    if (this.buffer.size >= MAX_BUFFERED) {
      this.dropped++;
      return;
    }
    const limit = this.limitOf(customerId, model, error);
    this.buffer.set(key, {
      customer_id: customerId,
      model,
      reason: error.code,
      minute,
      status: error.status,
      limit_type: limit.type,
      limit_value: limit.value,
      budget_id: limit.budgetId,
      message: error.message,
      count: 1,
      first_at: at.toISOString(),
      last_at: at.toISOString(),
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.flush().catch(() => undefined), this.flushIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush().catch(() => undefined);
  }

  /** Writes what is buffered; serialised, so two flushes never race. */
  flush(): Promise<void> {
    this.flushing = this.flushing.catch(() => undefined).then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.dropped) {
      this.logger.warn({ dropped: this.dropped }, 'refused-request buffer was full; some refusals were not recorded');
      this.dropped = 0;
    }
    const knex = this.orm.em.getConnection().getKnex();
    if (this.buffer.size) {
      const rows = [...this.buffer.values()];
      this.buffer = new Map();
      try {
        await knex.raw(
          `insert into refused_requests (customer_id, model, reason, minute, status, limit_type, limit_value, budget_id, message, count, first_at, last_at)
           select customer_id, model, reason, minute, status, limit_type, limit_value, budget_id, message, count, first_at, last_at
           from jsonb_to_recordset(?::jsonb) as x(customer_id text, model text, reason text, minute timestamptz, status int, limit_type text,
             limit_value text, budget_id text, message text, count int, first_at timestamptz, last_at timestamptz)
           on conflict (customer_id, model, reason, minute) do update set count = refused_requests.count + excluded.count,
             last_at = greatest(refused_requests.last_at, excluded.last_at), message = excluded.message, status = excluded.status,
             limit_type = excluded.limit_type, limit_value = excluded.limit_value, budget_id = excluded.budget_id`,
          [JSON.stringify(rows)],
        );
      } catch (error) {
        // Diagnostics, not money: a store outage loses these refusals rather than growing memory.
        this.logger.warn({ err: (error as Error).message, rows: rows.length }, 'could not record refused requests');
      }
    }
    const now = this.now().getTime();
    if (now - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = now;
      await knex.raw('delete from refused_requests where minute < ?', [new Date(now - RETENTION_DAYS * 86_400_000).toISOString()]).catch(() => undefined);
    }
  }

  /** The limit that refused it, read from the budget in force and the error's own headers. */
  private limitOf(customerId: string, model: string, error: GatewayError): { type: string | null; value: string | null; budgetId: string | null } {
    const budget = this.registry.effectiveBudget(this.registry.customers.get(customerId));
    const budgetId = budget?.budgetId ?? null;
    if (error.code === 'budget_exceeded') {
      const modelBudget = budget?.modelMaxBudget?.[model];
      if (modelBudget && error.message.includes(`for model=${model}`)) return { type: 'model_max_budget', value: dollars(modelBudget.maxBudget), budgetId };
      return { type: 'max_budget', value: budget?.maxBudget != null ? dollars(budget.maxBudget) : null, budgetId };
    }
    if (error.code === 'rate_limit_exceeded') {
      const type = error.headers['x-ratelimit-limit-type'] ?? null;
      const name = type === 'requests' ? 'rpm' : type === 'tokens' ? 'tpm' : type === 'parallel_requests' ? 'parallel' : type;
      const value = name === 'rpm' ? budget?.rpmLimit : name === 'tpm' ? budget?.tpmLimit : name === 'parallel' ? budget?.maxParallelRequests : null;
      return { type: name, value: value == null ? null : String(value), budgetId };
    }
    if (error.code === 'credits_exhausted') return { type: 'credits', value: error.headers['x-tollgate-credits-granted'] ? `$${error.headers['x-tollgate-credits-granted']}` : null, budgetId };
    if (error.code === 'customer_blocked') return { type: 'blocked', value: null, budgetId };
    return { type: null, value: null, budgetId };
  }
}

function dollars(pico: bigint): string {
  return `$${picoToDecimalString(pico)}`;
}
