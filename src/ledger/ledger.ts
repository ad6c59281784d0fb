/**
 * @module Durable, batched spend writes. `record()` is cheap on the hot path: an in-memory
 * queue, plus a journal line written with the others of its event-loop turn. A flusher
 * commits the queue every few hundred ms in one transaction: new customers, ledger rows
 * (idempotent by request id and time: a record keeps its created_at through retries and
 * replays), and the per-period counter increments and hourly rollups of exactly the rows
 * inserted, so both always equal the ledger.
 */
import type { Knex, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { Journal } from './journal';
import type { LedgerPartitions } from './partitions';
import { addToRollups } from './rollups';
import { creditPicoOf, type CounterIncrement, type SpendRecord } from './types';

/**
 * Runs inside a batch's transaction with the records actually inserted (duplicates from a
 * journal replay excluded), after the counters were incremented; rows it writes commit or
 * roll back with the batch. It may return a callback to run once the batch has committed.
 */
export type LedgerCommitHook = (transaction: Knex.Transaction, inserted: SpendRecord[]) => Promise<(() => void) | void>;

interface PendingCustomer {
  userId: string;
  createdAt: Date;
}

export class Ledger {
  private pending: SpendRecord[] = [];
  private pendingCustomers = new Map<string, PendingCustomer>();
  /** Charges a batch already stored under counters it should not have (see `repointCounters`). */
  private pendingMoves: CounterMove[] = [];
  /** Records a batch inserted (not a duplicate of a stored row): their charge is in the stored counters. */
  private readonly stored = new WeakSet<SpendRecord>();
  /** Records not yet committed, per customer (queued, or in a batch being committed). */
  private readonly unflushedByCustomer = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastError: Error | null = null;
  /** While the store is unreachable, timer flushes back off (doubling, capped) instead of hammering it. */
  private failures = 0;
  private nextAttemptAt = 0;
  private readonly commitHooks: LedgerCommitHook[] = [];

  /** Segments committed to the store but kept on disk while `keepJournal` says so. */
  private heldSegments: string[] = [];
  private keepJournal: () => boolean = () => false;

  constructor(
    private readonly orm: MikroORM,
    private readonly journal: Journal,
    private readonly logger: Logger,
    private readonly flushIntervalMs: number,
    private readonly partitions: LedgerPartitions,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (Date.now() < this.nextAttemptAt) return;
      if (this.pending.length || this.pendingCustomers.size || this.pendingMoves.length) void this.flush().catch(() => undefined);
      else if (this.heldSegments.length) this.discardCommitted([]);
    }, this.flushIntervalMs);
    this.timer.unref();
  }

  /**
   * Keeps journal segments after their records are committed, while `predicate` holds. With
   * shared counters (Redis) that is while counter updates wait for Redis: a process killed
   * then must find those requests in its journal, to count them when it restarts.
   */
  keepJournalWhile(predicate: () => boolean): void {
    this.keepJournal = predicate;
  }

  /** Deletes committed segments, and those held earlier, unless they must still be kept. */
  discardCommitted(segments: string[]): void {
    if (this.keepJournal()) {
      this.heldSegments.push(...segments);
      return;
    }
    this.journal.discard([...this.heldSegments.splice(0), ...segments]);
  }

  /**
   * Hot path: queues the record for the next batch and journals it (survives kill -9); the
   * promise resolves once the journal holds it, which must precede the answer's last byte.
   */
  record(record: SpendRecord): Promise<void> {
    this.pending.push(record);
    if (record.customerId !== null) this.unflushedByCustomer.set(record.customerId, (this.unflushedByCustomer.get(record.customerId) ?? 0) + 1);
    return this.journal.append(record);
  }

  /**
   * The counters a recorded request's charge belongs to changed after it was recorded (its
   * budget's period moved while it ran, and the shared counters counted it in the new period).
   * Still queued, the record changes; already taken by a batch (the counters answered later
   * than a batch), the next batch moves its charge from the counters it was stored under,
   * if that batch stored it.
   */
  repointCounters(record: SpendRecord, counters: CounterIncrement[]): void {
    if (this.pending.includes(record)) record.counters = counters;
    else this.pendingMoves.push({ record, from: record.counters, to: counters });
  }

  /** The moves due now: those of records back in the queue (a batch failed) just change them. */
  private takeMoves(): CounterMove[] {
    const moves: CounterMove[] = [];
    for (const move of this.pendingMoves) {
      if (this.pending.includes(move.record)) move.record.counters = move.to;
      else if (this.stored.has(move.record)) moves.push(move);
    }
    this.pendingMoves = [];
    return moves;
  }

  /** Whether a record of the customer has yet to be committed (the stored counters lag behind it). */
  hasUnflushed(customerId: string): boolean {
    return this.unflushedByCustomer.has(customerId);
  }

  private countFlushed(batch: SpendRecord[]): void {
    for (const record of batch) {
      if (record.customerId === null) continue;
      const left = (this.unflushedByCustomer.get(record.customerId) ?? 1) - 1;
      if (left > 0) this.unflushedByCustomer.set(record.customerId, left);
      else this.unflushedByCustomer.delete(record.customerId);
    }
  }

  /** Lets a listener (budget alerts, the webhook outbox) add rows to each batch's transaction. */
  addCommitHook(hook: LedgerCommitHook): void {
    this.commitHooks.push(hook);
  }

  /** A customer first seen on the data plane; inserted with the next batch. */
  noteCustomer(userId: string, createdAt: Date): void {
    this.pendingCustomers.set(userId, { userId, createdAt });
  }

  get backlog(): number {
    return this.pending.length;
  }

  get healthy(): boolean {
    return this.lastError === null;
  }

  /** Commits everything recorded so far. Concurrent callers share the serial flush chain. */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushOnce(): Promise<void> {
    if (!this.pending.length && !this.pendingCustomers.size && !this.pendingMoves.length) return;
    const moves = this.takeMoves();
    const batch = this.pending;
    const customers = this.pendingCustomers;
    const segments = this.journal.seal();
    this.pending = [];
    this.pendingCustomers = new Map();
    try {
      await this.commit(batch, [...customers.values()], moves);
      this.countFlushed(batch);
      this.discardCommitted(segments);
      if (this.failures) this.logger.info({ rows: batch.length, failedAttempts: this.failures }, 'ledger caught up after store outage');
      this.lastError = null;
      this.failures = 0;
      this.nextAttemptAt = 0;
    } catch (error) {
      // Put the batch back in front; its journal segments stay until a later commit succeeds.
      this.pending = batch.concat(this.pending);
      this.pendingMoves = moves.concat(this.pendingMoves);
      for (const [id, customer] of customers) if (!this.pendingCustomers.has(id)) this.pendingCustomers.set(id, customer);
      this.lastError = error as Error;
      this.failures++;
      this.nextAttemptAt = Date.now() + Math.min(this.flushIntervalMs * 2 ** this.failures, 5_000);
      // One error line per outage; the journal keeps every record safe meanwhile.
      if (this.failures === 1) this.logger.error({ err: error, rows: batch.length }, 'ledger flush failed; retrying with backoff');
      else this.logger.debug({ err: (error as Error).message, rows: this.pending.length, attempt: this.failures }, 'ledger flush failed again');
      throw error;
    }
  }

  /** Replays journal segments of dead processes; returns how many records were new. */
  /**
   * Commits what dead processes journaled but had not committed; returns every record their
   * journals held (committed before or now), for the shared counters to catch up with.
   */
  async recover(): Promise<SpendRecord[]> {
    let inserted = 0;
    const recovered: SpendRecord[] = [];
    for (const path of this.journal.orphanedSegments()) {
      const records = Journal.read(path);
      inserted += (await this.commit(records, [])).size;
      recovered.push(...records);
      this.journal.discard([path]);
    }
    // `inserted` of them were new to the store; the rest it had (committed before the crash).
    if (recovered.length) this.logger.warn({ records: recovered.length, inserted }, 'recovered metered requests from the crash journal');
    return recovered;
  }

  /**
   * Commits the charges of requests a killed process left in flight, except those the ledger
   * has already (they settled before the kill); returns the records inserted.
   */
  async recordInterrupted(records: SpendRecord[]): Promise<SpendRecord[]> {
    if (!records.length) return [];
    const settled = await this.settledAmong(records.map((record) => record.requestId));
    const fresh = records.filter((record) => !settled.has(record.requestId));
    const inserted = await this.commit(fresh, []);
    return fresh.filter((record) => inserted.has(record.requestId));
  }

  /** Which of these requests have a ledger row. */
  async settledAmong(requestIds: string[]): Promise<Set<string>> {
    if (!requestIds.length) return new Set();
    const knex = this.orm.em.getConnection().getKnex();
    const result = await knex.raw('select request_id from spend_ledger where request_id = any(?::text[])', [requestIds]);
    return new Set((result.rows as { request_id: string }[]).map((row) => row.request_id));
  }

  /**
   * Commits records and new customers in one transaction; returns the request ids inserted.
   * A record creates its customer only when the customer was not in the store at admission.
   */
  private async commit(records: SpendRecord[], newCustomers: PendingCustomer[], moves: CounterMove[] = []): Promise<Set<string>> {
    if (!records.length && !newCustomers.length && !moves.length) return new Set();
    // Outside the batch's transaction: partition DDL takes its own lock, briefly.
    await this.partitions.ensureFor(records.map((record) => record.createdAtMs));
    const knex = this.orm.em.getConnection().getKnex();
    const afterCommit: (() => void)[] = [];
    const inserted = await knex.transaction(async (trx) => {
      const customerRows = new Map<string, { user_id: string; created_at: string }>();
      for (const customer of newCustomers) customerRows.set(customer.userId, { user_id: customer.userId, created_at: customer.createdAt.toISOString() });
      for (const record of records) {
        if (record.customerId && !record.customerOnRecord && !customerRows.has(record.customerId)) {
          customerRows.set(record.customerId, { user_id: record.customerId, created_at: new Date(record.createdAtMs).toISOString() });
        }
      }
      if (customerRows.size) {
        await trx.raw(
          `insert into customers (user_id, blocked, created_at, updated_at)
           select x.user_id, false, x.created_at, x.created_at
           from jsonb_to_recordset(?::jsonb) as x(user_id text, created_at timestamptz)
           on conflict (user_id) do nothing`,
          [JSON.stringify([...customerRows.values()])],
        );
      }
      for (const move of moves) await moveCharge(trx, move);
      if (!records.length) return new Set<string>();
      const rows = records.map((r) => ({
        request_id: r.requestId,
        customer_id: r.customerId,
        api_key_id: r.apiKeyId,
        key_alias: r.keyAlias,
        model: r.model,
        deployment_id: r.deploymentId,
        provider: r.provider,
        endpoint: r.endpoint,
        prompt_tokens: r.promptTokens,
        completion_tokens: r.completionTokens,
        cached_prompt_tokens: r.cachedPromptTokens,
        cache_write_tokens: r.cacheWriteTokens,
        cost_pico: r.costPico.toString(),
        charge_pico: r.chargePico.toString(),
        // A prepaid customer's request is paid from its credits: the ledger is what they consumed.
        credit_pico: creditPicoOf(r).toString(),
        cost_source: r.costSource,
        status: r.status,
        period_start: new Date(r.periodStartMs).toISOString(),
        created_at: new Date(r.createdAtMs).toISOString(),
      }));
      const result = await trx.raw(
        `insert into spend_ledger (request_id, customer_id, api_key_id, key_alias, model, deployment_id, provider, endpoint,
           prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens, cost_pico, charge_pico, credit_pico, cost_source, status, period_start, created_at)
         select request_id, customer_id, api_key_id, key_alias, model, deployment_id, provider, endpoint,
           prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens, cost_pico, charge_pico, credit_pico, cost_source, status, period_start, created_at
         from jsonb_to_recordset(?::jsonb) as x(request_id text, customer_id text, api_key_id text, key_alias text, model text,
           deployment_id text, provider text, endpoint text, prompt_tokens int, completion_tokens int, cached_prompt_tokens int,
           cache_write_tokens int, cost_pico bigint, charge_pico bigint, credit_pico bigint, cost_source text, status text, period_start timestamptz, created_at timestamptz)
         on conflict (created_at, request_id) do nothing
         returning request_id`,
        [JSON.stringify(rows)],
      );
      const insertedIds = new Set((result.rows as { request_id: string }[]).map((row) => row.request_id));
      for (const record of records) if (insertedIds.has(record.requestId)) this.stored.add(record);
      await addToRollups(trx, records.filter((record) => insertedIds.has(record.requestId)));
      const increments = new Map<string, CounterAddition>();
      for (const record of records) {
        if (!record.customerId || !insertedIds.has(record.requestId)) continue;
        for (const counter of record.counters) {
          const id = `${record.customerId}\u0000${counter.scope}\u0000${counter.periodStartMs}`;
          let increment = increments.get(id);
          if (!increment) {
            increment = { customer_id: record.customerId, scope: counter.scope, period_start: new Date(counter.periodStartMs).toISOString(), spend: 0n, requests: 0, prompt: 0, completion: 0 };
            increments.set(id, increment);
          }
          increment.spend += record.chargePico;
          increment.requests += 1;
          increment.prompt += record.promptTokens;
          increment.completion += record.completionTokens;
        }
      }
      if (increments.size) await addToCounters(trx, [...increments.values()]);
      if (this.commitHooks.length && insertedIds.size) {
        const insertedRecords = records.filter((record) => insertedIds.has(record.requestId));
        for (const hook of this.commitHooks) {
          const callback = await hook(trx, insertedRecords);
          if (callback) afterCommit.push(callback);
        }
      }
      return insertedIds;
    });
    for (const callback of afterCommit) {
      try {
        callback();
      } catch (error) {
        this.logger.error({ err: error }, 'ledger after-commit callback failed');
      }
    }
    return inserted;
  }

  /** Graceful stop: commit everything, close the journal. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.flush();
    this.journal.close();
  }
}

interface CounterMove {
  record: SpendRecord;
  from: CounterIncrement[];
  to: CounterIncrement[];
}

/**
 * Takes a stored record's charge (and its request and tokens) off each counter it was stored
 * under and adds it to the one it belongs to, where the two differ. A counter gone meanwhile
 * (the customer deleted) is not brought back, as in the batch's own insert.
 */
async function moveCharge(trx: Knex.Transaction, { record, from, to }: CounterMove): Promise<void> {
  for (let index = 0; index < from.length; index++) {
    const old = from[index]!;
    const next = to[index];
    if (!next || !record.customerId || (old.scope === next.scope && old.periodStartMs === next.periodStartMs)) continue;
    const amounts = [record.chargePico.toString(), record.promptTokens, record.completionTokens];
    await trx.raw(
      `update spend_counters set spend_pico = spend_pico - ?, requests = requests - 1, prompt_tokens = prompt_tokens - ?,
         completion_tokens = completion_tokens - ?, updated_at = now()
       where customer_id = ? and scope = ? and period_start = ?`,
      [...amounts, record.customerId, old.scope, new Date(old.periodStartMs).toISOString()],
    );
    await addToCounters(trx, [
      { customer_id: record.customerId, scope: next.scope, period_start: new Date(next.periodStartMs).toISOString(), spend: record.chargePico, requests: 1, prompt: record.promptTokens, completion: record.completionTokens },
    ]);
  }
}

/** What one stored counter (customer, scope, period start) gains. */
interface CounterAddition {
  customer_id: string;
  scope: string;
  period_start: string;
  spend: bigint;
  requests: number;
  prompt: number;
  completion: number;
}

/** Adds to the stored counters, creating those missing, in one statement. */
async function addToCounters(trx: Knex.Transaction, additions: CounterAddition[]): Promise<void> {
  await trx.raw(
    `insert into spend_counters (customer_id, scope, period_start, spend_pico, requests, prompt_tokens, completion_tokens, updated_at)
     select customer_id, scope, period_start, spend, requests, prompt, completion, now()
     from jsonb_to_recordset(?::jsonb) as x(customer_id text, scope text, period_start timestamptz, spend bigint, requests bigint, prompt bigint, completion bigint)
     -- A customer deleted while its request ran keeps its ledger row, not a counter: created
     -- again, it starts from zero (its live counter is not brought back either).
     where exists (select 1 from customers c where c.user_id = x.customer_id)
     on conflict (customer_id, scope, period_start) do update set
       spend_pico = spend_counters.spend_pico + excluded.spend_pico,
       requests = spend_counters.requests + excluded.requests,
       prompt_tokens = spend_counters.prompt_tokens + excluded.prompt_tokens,
       completion_tokens = spend_counters.completion_tokens + excluded.completion_tokens,
       updated_at = now()`,
    [JSON.stringify(additions.map((addition) => ({ ...addition, spend: addition.spend.toString() })))],
  );
}
