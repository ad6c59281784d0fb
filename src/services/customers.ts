/**
 * @module Customers (end users): the one place their rules live. A customer points at one
 * budget (its own private budget or a shared tier) or at none, and then the default budget
 * applies. Fixes LiteLLM's quirks: update can set `blocked:false` and `max_budget:0`,
 * unblock clears the stored flag, block/unblock are idempotent, list is paginated.
 */
import { randomUUID } from 'node:crypto';
import { BudgetEntity, CustomerEntity } from '../store/entities';
import { budgetToEntityData, customerToEntityData } from '../store/mappers';
import type { BudgetRecord, CustomerRecord } from '../governance/records';
import { validateCustomerId } from '../data-plane/customer-id';
import { GatewayError } from '../shared/errors';
import type { Pico } from '../shared/money';
import { hasBudgetFields, SNAKE_NAMES, type BudgetFields, type FieldNames } from './budget-fields';
import { checkSoftBelowMax, type BudgetService } from './budgets';
import type { ServiceContext } from './context';
import type { SpendService } from './spend';
import { invalid } from './validation';
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
const AUDITED: (keyof CustomerRecord)[] = ['alias', 'blocked', 'budgetId', 'allowedModelRegion', 'defaultModel'];

export interface CustomerPage {
  items: CustomerView[];
  total: number;
  hasMore: boolean;
}

const REGIONS = ['eu', 'us'];

export class CustomerService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly budgets: BudgetService,
    private readonly spend: SpendService,
    private readonly refusals: RefusalService,
  ) {}

  async view(customer: CustomerRecord): Promise<CustomerView> {
    return (await this.views([customer]))[0]!;
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
    return Promise.all(
      customers.map(async (customer) => {
        const budget = this.ctx.registry.effectiveBudget(customer);
        if (budget) this.ctx.resolver.periodOf(budget);
        const spend = await this.spend.currentSpend(customer.userId);
        let status: CustomerStatus = 'active';
        if (customer.blocked) status = 'blocked';
        else if (budget?.maxBudget != null && spend >= budget.maxBudget) status = 'over_budget';
        else if (rateLimited.has(customer.userId)) status = 'rate_limited';
        return { customer, spend, budget, status };
      }),
    );
  }

  async get(userId: string): Promise<CustomerView | null> {
    const customer = this.ctx.registry.customers.get(userId);
    return customer ? this.view(customer) : null;
  }

  async require(userId: string, field = 'end_user_id'): Promise<CustomerView> {
    const view = await this.get(userId);
    if (!view) throw new GatewayError('not_found', `End User Id=${userId} does not exist in db`, field);
    return view;
  }

  /**
   * Ordered by id (or by period spend); `after` is the last id of the previous page; `search`
   * matches id or alias; `budgetId` and `status` filter. Filtering by status or sorting by
   * spend reads every matching customer's spend (in memory, like the list itself).
   */
  async list(options: CustomerListOptions): Promise<CustomerPage> {
    const first = Math.min(Math.max(options.first ?? 100, 1), 1000);
    const needle = options.search?.toLowerCase();
    let all = [...this.ctx.registry.customers.values()];
    if (needle) all = all.filter((c) => c.userId.toLowerCase().includes(needle) || (c.alias ?? '').toLowerCase().includes(needle));
    if (options.budgetId !== undefined && options.budgetId !== null) {
      all = all.filter((c) => (this.ctx.registry.effectiveBudget(c)?.budgetId ?? '') === options.budgetId);
    }
    all.sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    const sort = options.sort ?? 'id';
    let views: CustomerView[] | null = null;
    if (options.status || sort !== 'id') {
      views = await this.views(all);
      if (options.status) views = views.filter((v) => v.status === options.status);
      if (sort !== 'id') {
        const sign = sort === 'spend_desc' ? -1 : 1;
        views.sort((a, b) => (a.spend === b.spend ? 0 : a.spend < b.spend ? -sign : sign)); // stable: id order within equal spend
      }
      all = views.map((v) => v.customer);
    }
    let start = options.offset ?? 0;
    if (options.after) {
      const after = options.after;
      const index = sort === 'id' ? all.findIndex((c) => c.userId > after) : all.findIndex((c) => c.userId === after) + 1;
      start = index < 0 ? all.length : index;
    }
    const page = all.slice(start, start + first);
    const items = views ? views.slice(start, start + first) : await this.views(page);
    return { items, total: all.length, hasMore: start + first < all.length };
  }

  async create(input: CustomerInput, actor: string, names: FieldNames = SNAKE_NAMES): Promise<CustomerView> {
    const userId = validateCustomerId(input.userId, 'user_id');
    if (input.budgetId && input.budget.maxBudget !== undefined) {
      throw new GatewayError('bad_request', "Set either 'max_budget' or 'budget_id', not both.", 'max_budget');
    }
    if (input.budgetId && hasBudgetFields(input.budget)) {
      throw new GatewayError('bad_request', "Set either inline budget fields or 'budget_id', not both.", 'budget_id');
    }
    if (this.ctx.registry.customers.has(userId)) {
      throw new GatewayError('bad_request', `Customer already exists, passed user_id=${userId}. Please pass a new user_id.`, 'user_id');
    }
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
      createdAt: now,
      updatedAt: now,
    };
    await this.ctx.orm.em.fork().transactional(async (em) => {
      if (privateBudget) await em.insert(BudgetEntity, budgetToEntityData(privateBudget));
      await em.insert(CustomerEntity, customerToEntityData(record));
      const changes = changesBetween(null, record, AUDITED);
      if (privateBudget) changes.limits = [null, describeLimits(input.budget)];
      await writeAudit(em, { customerId: userId, action: 'created', actor, changes, createdAt: now });
    });
    if (privateBudget) this.ctx.registry.budgets.set(privateBudget.budgetId, privateBudget);
    this.ctx.registry.customers.set(userId, record);
    await this.ctx.invalidation.publish([...(privateBudget ? [{ kind: 'budget' as const, id: privateBudget.budgetId }] : []), { kind: 'customer', id: userId }]);
    return this.view(record);
  }

  async update(userId: string, patch: CustomerPatch, actor: string, names: FieldNames = SNAKE_NAMES): Promise<CustomerView> {
    const current = (await this.require(userId, 'user_id')).customer;
    if (patch.budgetId !== undefined && hasBudgetFields(patch.budget)) {
      throw new GatewayError('bad_request', "Set either budget fields (e.g. 'max_budget') or 'budget_id', not both.", 'budget_id');
    }
    if (patch.budgetId) this.budgets.require(patch.budgetId);
    this.checkRegionAndModel(patch);
    await this.ctx.ledger.flush(); // the row may still be queued from its first request
    const next: CustomerRecord = { ...current, updatedAt: this.ctx.now() };
    if (patch.alias !== undefined) next.alias = patch.alias;
    if (patch.blocked !== undefined) next.blocked = patch.blocked;
    if (patch.allowedModelRegion !== undefined) next.allowedModelRegion = patch.allowedModelRegion;
    if (patch.defaultModel !== undefined) next.defaultModel = patch.defaultModel;
    if (patch.budgetId !== undefined) next.budgetId = patch.budgetId;

    let createdBudget: BudgetRecord | null = null;
    if (hasBudgetFields(patch.budget)) {
      const own = current.budgetId ? this.ctx.registry.budgets.get(current.budgetId) : undefined;
      const sharedWithOthers = own ? this.ctx.registry.customersOnBudget(own.budgetId).length > 1 : false;
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
    });
    if (createdBudget) this.ctx.registry.budgets.set(createdBudget.budgetId, createdBudget);
    Object.assign(current, next);
    await this.ctx.invalidation.publish([...(createdBudget ? [{ kind: 'budget' as const, id: createdBudget.budgetId }] : []), { kind: 'customer', id: userId }]);
    if (budgetChanged) await this.spend.recompute([userId]);
    return this.view(current);
  }

  async delete(userIds: string[], actor = 'admin'): Promise<number> {
    const missing = userIds.filter((id) => !this.ctx.registry.customers.has(id));
    if (missing.length) throw new GatewayError('not_found', `End User Id(s)=${missing.join(', ')} do not exist in db`, 'user_ids');
    await this.ctx.ledger.flush();
    await this.ctx.orm.em.fork().transactional(async (em) => {
      await em.nativeDelete(CustomerEntity, { userId: { $in: userIds } });
      for (const id of userIds) await writeAudit(em, { customerId: id, action: 'deleted', actor, changes: {}, createdAt: this.ctx.now() });
    });
    for (const id of userIds) {
      this.ctx.registry.customers.delete(id);
      await this.ctx.spendBook.forget(id);
    }
    await this.ctx.invalidation.publish(userIds.map((id) => ({ kind: 'customer', id })));
    return userIds.length;
  }

  /** Sets the blocked flag for each id, creating customers that do not exist yet. Idempotent. */
  async setBlocked(userIds: string[], blocked: boolean, actor = 'admin'): Promise<CustomerView[]> {
    const ids = [...new Set(userIds.map((id) => validateCustomerId(id, 'user_ids')))];
    await this.ctx.ledger.flush();
    const now = this.ctx.now();
    const records = ids.map(
      (id): CustomerRecord =>
        this.ctx.registry.customers.get(id) ?? { userId: id, alias: null, blocked, budgetId: null, allowedModelRegion: null, defaultModel: null, createdAt: now, updatedAt: now },
    );
    await this.ctx.orm.em.fork().transactional(async (em) => {
      for (const record of records) {
        await em.upsert(CustomerEntity, customerToEntityData({ ...record, blocked, updatedAt: now }));
        const known = this.ctx.registry.customers.has(record.userId);
        if (!known || record.blocked !== blocked) {
          await writeAudit(em, { customerId: record.userId, action: blocked ? 'blocked' : 'unblocked', actor, changes: { blocked: [known ? record.blocked : null, blocked] }, createdAt: now });
        }
      }
    });
    for (const record of records) {
      record.blocked = blocked;
      record.updatedAt = now;
      this.ctx.registry.customers.set(record.userId, record);
    }
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
