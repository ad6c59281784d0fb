/**
 * @module Customers (end users): the one place their rules live. A customer points at one
 * budget (its own private budget or a shared tier) or at none, and then the default budget
 * applies. Fixes LiteLLM's quirks: update can set `blocked:false` and `max_budget:0`,
 * unblock clears the stored flag, block/unblock are idempotent, list is paginated.
 */
import { randomUUID } from 'node:crypto';
import { countCustomers, customerIdsOnBudget, listCustomers, readCustomers, searchPattern, storeBlocked } from '../store/customer-store';
import { PeriodSpend } from './period-spend';
import { seedCounters } from '../store/load-state';
import { ApiKeyEntity, BudgetEntity, CustomerEntity } from '../store/entities';
import { budgetToEntityData, customerToEntityData } from '../store/mappers';
import { CustomerCountersUnavailable } from '../governance/customer-cache';
import type { BudgetRecord, CustomerRecord } from '../governance/records';
import { validateCustomerId } from '../data-plane/customer-id';
import { GatewayError } from '../shared/errors';
import type { Pico } from '../shared/money';
import { hasBudgetFields, SNAKE_NAMES, type BudgetFields, type FieldNames } from './budget-fields';
import { checkSoftBelowMax, type BudgetService } from './budgets';
import type { ServiceContext } from './context';
import type { SpendService } from './spend';
import { invalid, isUniqueViolation } from './validation';
import { changesBetween, writeAudit } from './history';
import type { RefusalService } from './refusals';
import { picoToDollars } from '../shared/money';

export interface CustomerInput {
  userId: string;
  alias?: string | null;
  blocked?: boolean;
  budgetId?: string | null;
  allowedModelRegion?: string | null;
  defaultModel?: string | null;
  /** The customer's id in Stripe (`cus_…`), where the Stripe exporter sends its usage; null clears it. */
  stripeCustomerId?: string | null;
  /** Served only from prepaid credits (also when its budget is prepaid). */
  prepaid?: boolean;
  budget: BudgetFields;
}

export type CustomerPatch = Omit<Partial<CustomerInput>, 'userId' | 'budget'> & { budget: BudgetFields };

export interface CustomerView {
  customer: CustomerRecord;
  /** Spend in the current period of the budget in force. */
  spend: Pico;
  /** The budget in force: the customer's own, else the default budget. */
  budget: BudgetRecord | null;
  status: CustomerStatus;
  stripeCustomerId: string | null;
}

/**
 * What an operator needs to know first, most severe first: blocked (refused 403), over
 * budget (spend reached the max budget in force: refused 429 until the period resets),
 * rate-limited (refused by rpm/tpm/parallel in the last minute), else active.
 */
export type CustomerStatus = 'blocked' | 'over_budget' | 'rate_limited' | 'active';

export type CustomerSort = 'id' | 'spend_desc' | 'spend_asc';

export interface CustomerListOptions {
  first?: number;
  after?: string | null;
  search?: string | null;
  offset?: number;
  /** The budget in force (a tier, a private budget or the default); '' for customers with none. */
  budgetId?: string | null;
  status?: CustomerStatus | null;
  sort?: CustomerSort | null;
}

/** The fields of a customer its audit trail follows. */
const AUDITED: (keyof CustomerRecord)[] = ['alias', 'blocked', 'budgetId', 'allowedModelRegion', 'defaultModel', 'prepaid'];

export interface CustomerPage {
  items: CustomerView[];
  hasMore: boolean;
}

const REGIONS = ['eu', 'us'];
/** Candidates read at most for one page of a list sorted by spend and filtered by status. */
export const LIST_SCAN_CAP = 10_000;

/** Stripe ids are short ASCII tokens (`cus_…`); anything else would only fail at export time. */
function validateStripeCustomerId(value: string | null): string | null {
  if (value === null) return null;
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(value)) throw invalid('stripe_customer_id', 'must be a Stripe customer id such as "cus_NffrFeUfNV2Hib" (letters, digits, "_" or "-"), or null to clear it');
  return value;
}

export class CustomerService {
  /** Last Stripe id read or written per customer, for reads while the database is unreachable. */
  private readonly lastStripeCustomerIds = new Map<string, string | null>();

  private readonly periodSpend: PeriodSpend;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly budgets: BudgetService,
    private readonly spend: SpendService,
    private readonly refusals: RefusalService,
  ) {
    this.periodSpend = new PeriodSpend(ctx);
  }

  async view(customer: CustomerRecord): Promise<CustomerView> {
    return (await this.views([customer]))[0]!;
  }

  /**
   * Billing ids live only in the database (not in the governance registry, which decides
   * requests): the exporters read them from there at each delivery attempt.
   */
  private async stripeCustomerIdsOf(userIds: string[]): Promise<Map<string, string | null>> {
    const last = () => new Map(userIds.map((id) => [id, this.lastStripeCustomerIds.get(id) ?? null]));
    // Customer reads are served from memory while the database is down: then answer with the
    // last value this process saw rather than fail (or wait on) the whole read.
    if (!userIds.length || !this.ctx.ledger.healthy) return last();
    try {
      const rows = await this.ctx.orm.em
        .fork()
        .execute<{ user_id: string; stripe_customer_id: string | null }[]>('select user_id, stripe_customer_id from customers where user_id in (select jsonb_array_elements_text(?::jsonb))', [JSON.stringify(userIds)]);
      const found = new Map<string, string | null>(userIds.map((id) => [id, null]));
      for (const row of rows) found.set(row.user_id, row.stripe_customer_id);
      for (const [id, value] of found) this.lastStripeCustomerIds.set(id, value);
      return found;
    } catch {
      return last();
    }
  }


  private static async writeStripeCustomerId(em: { execute: (sql: string, params: unknown[]) => Promise<unknown> }, userId: string, stripeCustomerId: string | null | undefined): Promise<void> {
    if (stripeCustomerId === undefined) return;
    await em.execute('update customers set stripe_customer_id = ? where user_id = ?', [validateStripeCustomerId(stripeCustomerId), userId]);
  }

  /** Views of many customers: their spends at once, and one query for who is rate-limited. */
  async views(customers: CustomerRecord[]): Promise<CustomerView[]> {
    let rateLimited = new Set<string>();
    try {
      if (customers.length) rateLimited = await this.refusals.rateLimited(customers.length > 500 ? null : customers.map((c) => c.userId));
    } catch (error) {
      // The store is unreachable: spend still reads from memory; "rate-limited" cannot be told now.
      this.ctx.logger.warn({ err: (error as Error).message }, 'could not read recent rate-limit refusals');
    }
    const stripeIds = await this.stripeCustomerIdsOf(customers.map((c) => c.userId));
    // A customer this process has not loaded may lack its counters in the spend book (the
    // in-process book after a restart, a Redis that lost them): seed them from the store
    // first, as a cache load does, so its spend and status are not read as zero.
    const unloaded = customers.filter((c) => !this.ctx.registry.customers.has(c.userId));
    if (unloaded.length && this.ctx.ledger.healthy) {
      await seedCounters(this.ctx.orm, this.ctx.spendBook, unloaded, (customer, scope) => this.ctx.resolver.counterStartOf(customer, scope)).catch((error: Error) => this.ctx.logger.warn({ err: error.message }, 'could not seed the counters of listed customers'));
    }
    return Promise.all(
      customers.map(async (customer) => {
        const budget = this.ctx.registry.effectiveBudget(customer);
        if (budget) this.ctx.resolver.periodOf(budget);
        const spend = await this.spend.currentSpend(customer);
        let status: CustomerStatus = 'active';
        if (customer.blocked) status = 'blocked';
        else if (budget?.maxBudget != null && spend >= budget.maxBudget) status = 'over_budget';
        else if (rateLimited.has(customer.userId)) status = 'rate_limited';
        return { customer, spend, budget, status, stripeCustomerId: stripeIds.get(customer.userId) ?? null };
      }),
    );
  }

  /** From this process's cache, else one indexed read of the store (a customer another process created is found at once). */
  async get(userId: string): Promise<CustomerView | null> {
    if (!isStorableId(userId)) return null; // never created, and not worth a query (PostgreSQL text holds no NUL)
    let customer: CustomerRecord | null;
    try {
      customer = await this.ctx.registry.customers.find(userId);
    } catch (error) {
      if (!(error instanceof CustomerCountersUnavailable)) throw error;
      throw new GatewayError('service_unavailable', `Spend counters are unreachable: ${error.message}`, null, { 'retry-after': '1' });
    }
    return customer ? this.view(customer) : null;
  }

  async require(userId: string, field = 'end_user_id'): Promise<CustomerView> {
    const view = await this.get(userId);
    if (!view) throw new GatewayError('not_found', `End User Id=${userId} does not exist in db`, field);
    return view;
  }

  /**
   * A page from the store, ordered by id on its primary key: `after` is the last id of the
   * previous page (keyset); `search` matches a substring of the id or alias (trigram indexes);
   * `budgetId` filters on the budget in force (indexed). Sorting by spend and filtering by
   * status read indexes too (period-spend.ts): the counters by period and spend, the blocked
   * customers, the counters at or past each capped budget's max. The candidates those give
   * (by the store's committed counters) are shown with their live spend and status, and a
   * status filter keeps those whose live status matches; a spend sort combined with a status
   * filter reads at most LIST_SCAN_CAP candidates per page.
   * Cached records are used where this process has them (they are the same, and current).
   */
  async list(options: CustomerListOptions): Promise<CustomerPage> {
    const first = Math.min(Math.max(options.first ?? 100, 1), 1000);
    checkSearchText('search', options.search);
    checkSearchText('after', options.after);
    checkSearchText('budget_id', options.budgetId);
    const sort = options.sort ?? 'id';
    const filter = { search: options.search || null, ...this.budgetFilterOf(options.budgetId) };
    const current = (records: CustomerRecord[]) => records.map((record) => this.ctx.registry.customers.peek(record.userId) ?? record);
    if (!options.status && sort === 'id') {
      const page = await listCustomers(this.ctx.orm, { ...filter, first, after: options.after ?? null, offset: options.offset });
      return { items: await this.views(current(page.records)), hasMore: page.hasMore };
    }
    const status = options.status ?? null;
    const spendFilter = { pattern: filter.search ? searchPattern(filter.search) : null, budgetId: options.budgetId ?? undefined };
    const periodSpend = this.periodSpend;
    // Candidate ids in the page's order, after `cursor`: `limit` of them (fewer: no more).
    const candidates = async (limit: number, cursor: string | null): Promise<string[]> => {
      if (sort !== 'id') return periodSpend.idsBySpend(sort === 'spend_desc' ? 'desc' : 'asc', spendFilter, limit, cursor);
      if (status === 'blocked') return (await listCustomers(this.ctx.orm, { ...filter, blocked: true, first: limit, after: cursor })).records.map((r) => r.userId);
      if (status === 'over_budget') return periodSpend.idsOverBudget(spendFilter, limit, cursor);
      const rateLimited = [...(await this.refusals.rateLimited(null))].sort();
      if (status === 'rate_limited') return (await listCustomers(this.ctx.orm, { ...filter, userIds: rateLimited, first: limit, after: cursor })).records.map((r) => r.userId);
      return periodSpend.idsNotBlockedNorOver(spendFilter, limit, cursor, rateLimited);
    };
    const wanted = first + (options.offset ?? 0);
    const matched: CustomerView[] = [];
    let cursor = options.after ?? null;
    let scanned = 0;
    let exhausted = false;
    while (matched.length <= wanted && scanned < LIST_SCAN_CAP) {
      const batch = Math.min(Math.max(wanted + 1 - matched.length, 100), 1000);
      const ids = await candidates(batch, cursor);
      scanned += ids.length;
      const stored = await readCustomers(this.ctx.orm, ids.filter((id) => !this.ctx.registry.customers.peek(id)));
      const records = ids.map((id) => this.ctx.registry.customers.peek(id) ?? stored.get(id)).filter((r): r is CustomerRecord => r !== undefined);
      for (const view of await this.views(records)) if (!status || view.status === status) matched.push(view);
      if (ids.length < batch) {
        exhausted = true;
        break;
      }
      cursor = ids[ids.length - 1]!;
    }
    const start = options.offset ?? 0;
    return { items: matched.slice(start, start + first), hasMore: matched.length > start + first || (!exhausted && matched.length >= start + first) };
  }

  /** The budget in force as a store filter: the default budget also covers customers without one. */
  private budgetFilterOf(budgetId: string | null | undefined): { budgetId?: string | null; orUnlinked?: boolean } {
    if (budgetId === undefined || budgetId === null) return {};
    if (budgetId === '') return { budgetId: null };
    return { budgetId, orUnlinked: budgetId === this.ctx.registry.defaultBudgetId };
  }

  /** Customers matching `search`, counted exactly up to CUSTOMER_COUNT_CAP (an index walk bounded by it). */
  count(search: string | null): Promise<number> {
    checkSearchText('search', search);
    return countCustomers(this.ctx.orm, { search });
  }

  async create(input: CustomerInput, actor: string, names: FieldNames = SNAKE_NAMES): Promise<CustomerView> {
    const userId = validateCustomerId(input.userId, 'user_id');
    if (input.stripeCustomerId !== undefined) validateStripeCustomerId(input.stripeCustomerId);
    if (input.budgetId && input.budget.maxBudget !== undefined) {
      throw new GatewayError('bad_request', "Set either 'max_budget' or 'budget_id', not both.", 'max_budget');
    }
    if (input.budgetId && hasBudgetFields(input.budget)) {
      throw new GatewayError('bad_request', "Set either inline budget fields or 'budget_id', not both.", 'budget_id');
    }
    const duplicate = () => new GatewayError('bad_request', `Customer already exists, passed user_id=${userId}. Please pass a new user_id.`, 'user_id');
    if (await this.ctx.registry.customers.find(userId)) throw duplicate();
    if (input.budgetId) this.budgets.require(input.budgetId);
    this.checkRegionAndModel(input);
    const now = this.ctx.now();
    let privateBudget: BudgetRecord | null = null;
    if (hasBudgetFields(input.budget)) privateBudget = this.newPrivateBudget(input.budget, actor, null, names);
    const record: CustomerRecord = {
      userId,
      alias: input.alias ?? null,
      blocked: input.blocked ?? false,
      budgetId: privateBudget?.budgetId ?? input.budgetId ?? null,
      allowedModelRegion: input.allowedModelRegion ?? null,
      defaultModel: input.defaultModel ?? null,
      prepaid: input.prepaid ?? false,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.ctx.orm.em.fork().transactional(async (em) => {
        if (privateBudget) await em.insert(BudgetEntity, budgetToEntityData(privateBudget));
        await em.insert(CustomerEntity, customerToEntityData(record));
        const changes = changesBetween(null, record, AUDITED);
        if (privateBudget) changes.limits = [null, describeLimits(input.budget)];
        await writeAudit(em, { customerId: userId, action: 'created', actor, changes, createdAt: now });
        await CustomerService.writeStripeCustomerId(em, userId, input.stripeCustomerId);
      });
    } catch (error) {
      // Created meanwhile (a concurrent call, or a first request on a proxy): the row's key.
      if (isUniqueViolation(error)) throw duplicate();
      throw error;
    }
    if (privateBudget) this.ctx.registry.budgets.set(privateBudget.budgetId, privateBudget);
    this.ctx.registry.customers.set(record);
    await this.ctx.invalidation.publish([...(privateBudget ? [{ kind: 'budget' as const, id: privateBudget.budgetId }] : []), { kind: 'customer', id: userId }]);
    return this.view(record);
  }

  async update(userId: string, patch: CustomerPatch, actor: string, names: FieldNames = SNAKE_NAMES): Promise<CustomerView> {
    const current = (await this.require(userId, 'user_id')).customer;
    if (patch.stripeCustomerId !== undefined) validateStripeCustomerId(patch.stripeCustomerId);
    if (patch.budgetId !== undefined && hasBudgetFields(patch.budget)) {
      throw new GatewayError('bad_request', "Set either budget fields (e.g. 'max_budget') or 'budget_id', not both.", 'budget_id');
    }
    if (patch.budgetId) this.budgets.require(patch.budgetId);
    this.checkRegionAndModel(patch);
    const next: CustomerRecord = { ...current, updatedAt: this.ctx.now() };
    if (patch.alias !== undefined) next.alias = patch.alias;
    if (patch.blocked !== undefined) next.blocked = patch.blocked;
    if (patch.allowedModelRegion !== undefined) next.allowedModelRegion = patch.allowedModelRegion;
    if (patch.defaultModel !== undefined) next.defaultModel = patch.defaultModel;
    if (patch.budgetId !== undefined) next.budgetId = patch.budgetId;
    if (patch.prepaid !== undefined) next.prepaid = patch.prepaid;

    let createdBudget: BudgetRecord | null = null;
    if (hasBudgetFields(patch.budget)) {
      const own = current.budgetId ? this.ctx.registry.budgets.get(current.budgetId) : undefined;
      const sharedWithOthers = own ? (await customerIdsOnBudget(this.ctx.orm, own.budgetId, 2)).length > 1 : false;
      if (own && !sharedWithOthers) {
        await this.budgets.update(own.budgetId, patch.budget, actor, names);
      } else {
        // No budget of its own, or a tier shared with others: give this customer a private
        // budget (starting from the tier's limits) rather than silently changing the tier.
        createdBudget = this.newPrivateBudget(patch.budget, actor, own ?? null, names);
        next.budgetId = createdBudget.budgetId;
      }
    }
    const budgetChanged = next.budgetId !== current.budgetId;
    await this.ctx.orm.em.fork().transactional(async (em) => {
      if (createdBudget) await em.insert(BudgetEntity, budgetToEntityData(createdBudget));
      const { userId: _id, createdAt: _created, ...data } = customerToEntityData(next);
      await em.upsert(CustomerEntity, { userId, createdAt: current.createdAt, ...data });
      const changes = changesBetween(current, next, AUDITED);
      if (hasBudgetFields(patch.budget)) changes.limits = [null, describeLimits(patch.budget)];
      await writeAudit(em, { customerId: userId, action: 'updated', actor, changes, createdAt: next.updatedAt });
      await CustomerService.writeStripeCustomerId(em, userId, patch.stripeCustomerId);
    });
    if (createdBudget) this.ctx.registry.budgets.set(createdBudget.budgetId, createdBudget);
    Object.assign(current, next);
    await this.ctx.invalidation.publish([...(createdBudget ? [{ kind: 'budget' as const, id: createdBudget.budgetId }] : []), { kind: 'customer', id: userId }]);
    if (budgetChanged) await this.spend.recompute([userId]);
    return this.view(current);
  }

  async delete(userIds: string[], actor = 'admin'): Promise<number> {
    const stored = await readCustomers(this.ctx.orm, [...new Set(userIds.filter(isStorableId))]);
    const missing = userIds.filter((id) => !stored.has(id));
    if (missing.length) throw new GatewayError('not_found', `End User Id(s)=${missing.join(', ')} do not exist in db`, 'user_ids');
    await this.ctx.ledger.flush();
    // A key bound to a deleted customer would bring it back (a new customer on the default
    // budget, its spend history gone): the keys go with it, in the same transaction.
    const boundKeys = [...this.ctx.registry.keys.values()].filter((key) => key.customerId !== null && !key.revoked && userIds.includes(key.customerId));
    await this.ctx.orm.em.fork().transactional(async (em) => {
      await em.nativeDelete(CustomerEntity, { userId: { $in: userIds } });
      await em.nativeUpdate(ApiKeyEntity, { customerId: { $in: userIds }, revokedAt: null }, { revokedAt: this.ctx.now() });
      // Its credits and its spend counters go with it: a customer created again under the id
      // starts without credits and from zero, as LiteLLM's users expect of a delete and re-create.
      // (Its ledger rows stay: they are what was billed.)
      await em.execute('delete from credit_grants where customer_id in (select jsonb_array_elements_text(?::jsonb))', [JSON.stringify(userIds)]);
      await em.execute('delete from spend_counters where customer_id in (select jsonb_array_elements_text(?::jsonb))', [JSON.stringify(userIds)]);
      for (const id of userIds) {
        const revokedKeys = boundKeys.filter((key) => key.customerId === id).map((key) => key.id);
        await writeAudit(em, { customerId: id, action: 'deleted', actor, changes: revokedKeys.length ? { revoked_keys: [revokedKeys, null] } : {}, createdAt: this.ctx.now() });
      }
    });
    for (const key of boundKeys) key.revoked = true;
    if (boundKeys.length) this.ctx.registry.keysChanged();
    for (const id of userIds) {
      this.ctx.registry.customers.delete(id);
      this.ctx.registry.credits.delete(id);
      await this.ctx.spendBook.forget(id);
    }
    await this.ctx.invalidation.publish([
      ...userIds.flatMap((id) => [{ kind: 'customer' as const, id }, { kind: 'credits' as const, id }]),
      ...boundKeys.map((key) => ({ kind: 'key' as const, id: key.keyHash })),
    ]);
    return userIds.length;
  }

  /**
   * Sets the blocked flag for each id in one statement, creating customers that do not exist
   * yet (other columns are kept). Idempotent. Other processes apply it through the notice,
   * those that have not cached the customer when they next read it. Changes go to the audit trail.
   */
  async setBlocked(userIds: string[], blocked: boolean, actor = 'admin'): Promise<CustomerView[]> {
    const ids = [...new Set(userIds.map((id) => validateCustomerId(id, 'user_ids')))];
    const before = await readCustomers(this.ctx.orm, ids);
    const now = this.ctx.now();
    const stored = await storeBlocked(this.ctx.orm, ids, blocked, now);
    const changed = ids.filter((id) => before.get(id)?.blocked !== blocked);
    if (changed.length) {
      await this.ctx.orm.em.fork().transactional(async (em) => {
        for (const id of changed) {
          const was = before.get(id);
          await writeAudit(em, { customerId: id, action: blocked ? 'blocked' : 'unblocked', actor, changes: { blocked: [was ? was.blocked : null, blocked] }, createdAt: now });
        }
      });
    }
    const records = stored.map((fresh) => {
      const cached = this.ctx.registry.customers.get(fresh.userId);
      if (!cached) return fresh;
      Object.assign(cached, fresh); // in place: the record requests in flight hold
      return cached;
    });
    await this.ctx.invalidation.publish(records.map((r) => ({ kind: 'customer', id: r.userId })));
    return this.views(records);
  }

  private newPrivateBudget(fields: BudgetFields, actor: string, base: BudgetRecord | null = null, names: FieldNames = SNAKE_NAMES): BudgetRecord {
    // Validated and built like any budget, but inserted together with the customer row.
    const now = this.ctx.now();
    const duration = fields.budgetDuration !== undefined ? fields.budgetDuration : (base?.duration ?? null);
    const record: BudgetRecord = {
      budgetId: randomUUID(),
      maxBudget: fields.maxBudget !== undefined ? fields.maxBudget : (base?.maxBudget ?? null),
      softBudget: fields.softBudget !== undefined ? fields.softBudget : (base?.softBudget ?? null),
      rpmLimit: fields.rpmLimit !== undefined ? fields.rpmLimit : (base?.rpmLimit ?? null),
      tpmLimit: fields.tpmLimit !== undefined ? fields.tpmLimit : (base?.tpmLimit ?? null),
      maxParallelRequests: fields.maxParallelRequests !== undefined ? fields.maxParallelRequests : (base?.maxParallelRequests ?? null),
      duration,
      resetAt: fields.budgetResetAt ?? (duration ? this.budgets.firstReset(duration) : null),
      modelMaxBudget: fields.modelMaxBudget !== undefined ? fields.modelMaxBudget : (base?.modelMaxBudget ?? null),
      priceMultiplier: fields.priceMultiplier !== undefined ? fields.priceMultiplier : (base?.priceMultiplier ?? null),
      modelPrices: fields.modelPrices !== undefined ? fields.modelPrices : (base?.modelPrices ?? null),
      prepaid: base?.prepaid ?? false,
      createdBy: actor,
      updatedBy: actor,
      createdAt: now,
      updatedAt: now,
    };
    checkSoftBelowMax(record, names);
    return record;
  }

  private checkRegionAndModel(input: { allowedModelRegion?: string | null; defaultModel?: string | null }): void {
    if (input.allowedModelRegion && !REGIONS.includes(input.allowedModelRegion)) {
      throw invalid('allowed_model_region', `must be one of ${REGIONS.join(', ')}`);
    }
    if (input.defaultModel && !this.ctx.config.deployments.some((d) => d.modelName === input.defaultModel)) {
      throw invalid('default_model', `"${input.defaultModel}" is not a model on this proxy (configure it in config.yaml)`);
    }
  }
}

/** A search text or cursor the store can take: PostgreSQL text holds no NUL, and ids are at most 256 characters. */
function checkSearchText(field: string, value: string | null | undefined): void {
  if (value === null || value === undefined) return;
  if (value.includes('\u0000')) throw invalid(field, 'must not contain NUL characters');
  if (value.length > 256) throw invalid(field, 'must be at most 256 characters');
}

/** Whether a customer with this id could exist: create and the data plane accept no other. */
function isStorableId(userId: string): boolean {
  try {
    validateCustomerId(userId, 'user_id');
    return true;
  } catch {
    return false;
  }
}

/** Inline limits as an audit trail shows them: dollars (nested model budgets too), duration text. */
function describeLimits(fields: BudgetFields): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(fields, (_key, value: unknown) => {
      if (typeof value === 'bigint') return picoToDollars(value);
      if (value && typeof value === 'object' && typeof (value as { text?: unknown }).text === 'string') return (value as { text: string }).text;
      return value;
    }),
  ) as Record<string, unknown>;
}
