/**
 * @module Customers (end users): the one place their rules live. A customer points at one
 * budget (its own private budget or a shared tier) or at none, and then the default budget
 * applies. Fixes LiteLLM's quirks: update can set `blocked:false` and `max_budget:0`,
 * unblock clears the stored flag, block/unblock are idempotent, list is paginated.
 */
import { randomUUID } from 'node:crypto';
import { countCustomers, customerIdsOnBudget, listCustomers, readCustomers, storeBlocked } from '../store/customer-store';
import { BudgetEntity, CustomerEntity } from '../store/entities';
import { budgetToEntityData, customerToEntityData } from '../store/mappers';
import { CustomerCountersUnavailable } from '../governance/customer-cache';
import type { BudgetRecord, CustomerRecord } from '../governance/records';
import { validateCustomerId } from '../data-plane/customer-id';
import { GatewayError } from '../shared/errors';
import type { Pico } from '../shared/money';
import { hasBudgetFields, type BudgetFields } from './budget-fields';
import type { BudgetService } from './budgets';
import type { ServiceContext } from './context';
import type { SpendService } from './spend';
import { invalid, isUniqueViolation } from './validation';

export interface CustomerInput {
  userId: string;
  alias?: string | null;
  blocked?: boolean;
  budgetId?: string | null;
  allowedModelRegion?: string | null;
  defaultModel?: string | null;
  budget: BudgetFields;
}

export type CustomerPatch = Omit<Partial<CustomerInput>, 'userId' | 'budget'> & { budget: BudgetFields };

export interface CustomerView {
  customer: CustomerRecord;
  /** Spend in the current period of the budget in force. */
  spend: Pico;
  /** The budget in force: the customer's own, else the default budget. */
  budget: BudgetRecord | null;
}

export interface CustomerPage {
  items: CustomerView[];
  hasMore: boolean;
}

const REGIONS = ['eu', 'us'];

export class CustomerService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly budgets: BudgetService,
    private readonly spend: SpendService,
  ) {}

  async view(customer: CustomerRecord): Promise<CustomerView> {
    const budget = this.ctx.registry.effectiveBudget(customer);
    if (budget) this.ctx.resolver.periodOf(budget);
    return { customer, spend: await this.spend.currentSpend(customer), budget };
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
   * previous page (keyset); `search` matches a substring of the id or alias (trigram indexes).
   * Cached records are used where this process has them (they are the same, and current).
   */
  async list(options: { first?: number; after?: string | null; search?: string | null; offset?: number }): Promise<CustomerPage> {
    const first = Math.min(Math.max(options.first ?? 100, 1), 1000);
    checkSearchText('search', options.search);
    checkSearchText('after', options.after);
    const page = await listCustomers(this.ctx.orm, { first, after: options.after ?? null, offset: options.offset, search: options.search || null });
    const records = page.records.map((record) => this.ctx.registry.customers.peek(record.userId) ?? record);
    return { items: await Promise.all(records.map((record) => this.view(record))), hasMore: page.hasMore };
  }

  /** Customers matching `search`, counted exactly up to CUSTOMER_COUNT_CAP (an index walk bounded by it). */
  count(search: string | null): Promise<number> {
    checkSearchText('search', search);
    return countCustomers(this.ctx.orm, { search });
  }

  async create(input: CustomerInput, actor: string): Promise<CustomerView> {
    const userId = validateCustomerId(input.userId, 'user_id');
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
    if (hasBudgetFields(input.budget)) privateBudget = this.newPrivateBudget(input.budget, actor);
    const record: CustomerRecord = {
      userId,
      alias: input.alias ?? null,
      blocked: input.blocked ?? false,
      budgetId: privateBudget?.budgetId ?? input.budgetId ?? null,
      allowedModelRegion: input.allowedModelRegion ?? null,
      defaultModel: input.defaultModel ?? null,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.ctx.orm.em.fork().transactional(async (em) => {
        if (privateBudget) await em.insert(BudgetEntity, budgetToEntityData(privateBudget));
        await em.insert(CustomerEntity, customerToEntityData(record));
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

  async update(userId: string, patch: CustomerPatch, actor: string): Promise<CustomerView> {
    const current = (await this.require(userId, 'user_id')).customer;
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

    let createdBudget: BudgetRecord | null = null;
    if (hasBudgetFields(patch.budget)) {
      const own = current.budgetId ? this.ctx.registry.budgets.get(current.budgetId) : undefined;
      const sharedWithOthers = own ? (await customerIdsOnBudget(this.ctx.orm, own.budgetId, 2)).length > 1 : false;
      if (own && !sharedWithOthers) {
        await this.budgets.update(own.budgetId, patch.budget, actor);
      } else {
        // No budget of its own, or a tier shared with others: give this customer a private
        // budget (starting from the tier's limits) rather than silently changing the tier.
        createdBudget = this.newPrivateBudget(patch.budget, actor, own ?? null);
        next.budgetId = createdBudget.budgetId;
      }
    }
    const budgetChanged = next.budgetId !== current.budgetId;
    await this.ctx.orm.em.fork().transactional(async (em) => {
      if (createdBudget) await em.insert(BudgetEntity, budgetToEntityData(createdBudget));
      const { userId: _id, createdAt: _created, ...data } = customerToEntityData(next);
      await em.upsert(CustomerEntity, { userId, createdAt: current.createdAt, ...data });
    });
    if (createdBudget) this.ctx.registry.budgets.set(createdBudget.budgetId, createdBudget);
    Object.assign(current, next);
    await this.ctx.invalidation.publish([...(createdBudget ? [{ kind: 'budget' as const, id: createdBudget.budgetId }] : []), { kind: 'customer', id: userId }]);
    if (budgetChanged) await this.spend.recompute([userId]);
    return this.view(current);
  }

  async delete(userIds: string[]): Promise<number> {
    const stored = await readCustomers(this.ctx.orm, [...new Set(userIds.filter(isStorableId))]);
    const missing = userIds.filter((id) => !stored.has(id));
    if (missing.length) throw new GatewayError('not_found', `End User Id(s)=${missing.join(', ')} do not exist in db`, 'user_ids');
    await this.ctx.ledger.flush();
    await this.ctx.orm.em.fork().nativeDelete(CustomerEntity, { userId: { $in: userIds } });
    for (const id of userIds) {
      this.ctx.registry.customers.delete(id);
      await this.ctx.spendBook.forget(id);
    }
    await this.ctx.invalidation.publish(userIds.map((id) => ({ kind: 'customer', id })));
    return userIds.length;
  }

  /**
   * Sets the blocked flag for each id in one statement, creating customers that do not exist
   * yet (other columns are kept). Idempotent. Other processes apply it through the notice,
   * those that have not cached the customer when they next read it.
   */
  async setBlocked(userIds: string[], blocked: boolean): Promise<CustomerView[]> {
    const ids = [...new Set(userIds.map((id) => validateCustomerId(id, 'user_ids')))];
    const stored = await storeBlocked(this.ctx.orm, ids, blocked, this.ctx.now());
    const records = stored.map((fresh) => {
      const cached = this.ctx.registry.customers.get(fresh.userId);
      if (!cached) return fresh;
      Object.assign(cached, fresh); // in place: the record requests in flight hold
      return cached;
    });
    await this.ctx.invalidation.publish(records.map((r) => ({ kind: 'customer', id: r.userId })));
    return Promise.all(records.map((r) => this.view(r)));
  }

  private newPrivateBudget(fields: BudgetFields, actor: string, base: BudgetRecord | null = null): BudgetRecord {
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
      createdBy: actor,
      updatedBy: actor,
      createdAt: now,
      updatedAt: now,
    };
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
