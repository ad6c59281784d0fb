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
import { hasBudgetFields, type BudgetFields } from './budget-fields';
import type { BudgetService } from './budgets';
import type { ServiceContext } from './context';
import type { SpendService } from './spend';
import { invalid } from './validation';

export interface CustomerInput {
  userId: string;
  alias?: string | null;
  blocked?: boolean;
  budgetId?: string | null;
  allowedModelRegion?: string | null;
  defaultModel?: string | null;
  /** The customer's id in Stripe (`cus_…`), where the Stripe exporter sends its usage; null clears it. */
  stripeCustomerId?: string | null;
  budget: BudgetFields;
}

export type CustomerPatch = Omit<Partial<CustomerInput>, 'userId' | 'budget'> & { budget: BudgetFields };

export interface CustomerView {
  customer: CustomerRecord;
  /** Spend in the current period of the budget in force. */
  spend: Pico;
  /** The budget in force: the customer's own, else the default budget. */
  budget: BudgetRecord | null;
  stripeCustomerId: string | null;
}

export interface CustomerPage {
  items: CustomerView[];
  total: number;
  hasMore: boolean;
}

const REGIONS = ['eu', 'us'];

/** Stripe ids are short ASCII tokens (`cus_…`); anything else would only fail at export time. */
function validateStripeCustomerId(value: string | null): string | null {
  if (value === null) return null;
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(value)) throw invalid('stripe_customer_id', 'must be a Stripe customer id such as "cus_NffrFeUfNV2Hib" (letters, digits, "_" or "-"), or null to clear it');
  return value;
}

export class CustomerService {
  /** Last Stripe id read or written per customer, for reads while the database is unreachable. */
  private readonly lastStripeCustomerIds = new Map<string, string | null>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly budgets: BudgetService,
    private readonly spend: SpendService,
  ) {}

  async view(customer: CustomerRecord): Promise<CustomerView> {
    const budget = this.ctx.registry.effectiveBudget(customer);
    if (budget) this.ctx.resolver.periodOf(budget);
    return { customer, spend: await this.spend.currentSpend(customer.userId), budget, stripeCustomerId: await this.stripeCustomerIdOf(customer.userId) };
  }

  /**
   * Billing ids live only in the database (not in the governance registry, which decides
   * requests): the exporters read them from there at each delivery attempt.
   */
  private async stripeCustomerIdOf(userId: string): Promise<string | null> {
    // Customer reads are served from memory while the database is down: then answer with the
    // last value this process saw rather than fail (or wait on) the whole read.
    if (!this.ctx.ledger.healthy) return this.lastStripeCustomerIds.get(userId) ?? null;
    try {
      const rows = await this.ctx.orm.em.fork().execute<{ stripe_customer_id: string | null }[]>('select stripe_customer_id from customers where user_id = ?', [userId]);
      const value = rows[0]?.stripe_customer_id ?? null;
      this.lastStripeCustomerIds.set(userId, value);
      return value;
    } catch {
      return this.lastStripeCustomerIds.get(userId) ?? null;
    }
  }

  private static async writeStripeCustomerId(em: { execute: (sql: string, params: unknown[]) => Promise<unknown> }, userId: string, stripeCustomerId: string | null | undefined): Promise<void> {
    if (stripeCustomerId === undefined) return;
    await em.execute('update customers set stripe_customer_id = ? where user_id = ?', [validateStripeCustomerId(stripeCustomerId), userId]);
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

  /** Ordered by id; `after` is the last id of the previous page; `search` matches id or alias. */
  async list(options: { first?: number; after?: string | null; search?: string | null; offset?: number }): Promise<CustomerPage> {
    const first = Math.min(Math.max(options.first ?? 100, 1), 1000);
    const needle = options.search?.toLowerCase();
    let all = [...this.ctx.registry.customers.values()];
    if (needle) all = all.filter((c) => c.userId.toLowerCase().includes(needle) || (c.alias ?? '').toLowerCase().includes(needle));
    all.sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    let start = options.offset ?? 0;
    if (options.after) {
      const index = all.findIndex((c) => c.userId > options.after!);
      start = index < 0 ? all.length : index;
    }
    const page = all.slice(start, start + first);
    return { items: await Promise.all(page.map((c) => this.view(c))), total: all.length, hasMore: start + first < all.length };
  }

  async create(input: CustomerInput, actor: string): Promise<CustomerView> {
    const userId = validateCustomerId(input.userId, 'user_id');
    if (input.stripeCustomerId !== undefined) validateStripeCustomerId(input.stripeCustomerId);
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
    await this.ctx.orm.em.fork().transactional(async (em) => {
      if (privateBudget) await em.insert(BudgetEntity, budgetToEntityData(privateBudget));
      await em.insert(CustomerEntity, customerToEntityData(record));
      await CustomerService.writeStripeCustomerId(em, userId, input.stripeCustomerId);
    });
    if (privateBudget) this.ctx.registry.budgets.set(privateBudget.budgetId, privateBudget);
    this.ctx.registry.customers.set(userId, record);
    await this.ctx.invalidation.publish([...(privateBudget ? [{ kind: 'budget' as const, id: privateBudget.budgetId }] : []), { kind: 'customer', id: userId }]);
    return this.view(record);
  }

  async update(userId: string, patch: CustomerPatch, actor: string): Promise<CustomerView> {
    const current = (await this.require(userId, 'user_id')).customer;
    if (patch.stripeCustomerId !== undefined) validateStripeCustomerId(patch.stripeCustomerId);
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
      await CustomerService.writeStripeCustomerId(em, userId, patch.stripeCustomerId);
    });
    if (createdBudget) this.ctx.registry.budgets.set(createdBudget.budgetId, createdBudget);
    Object.assign(current, next);
    await this.ctx.invalidation.publish([...(createdBudget ? [{ kind: 'budget' as const, id: createdBudget.budgetId }] : []), { kind: 'customer', id: userId }]);
    if (budgetChanged) await this.spend.recompute([userId]);
    return this.view(current);
  }

  async delete(userIds: string[]): Promise<number> {
    const missing = userIds.filter((id) => !this.ctx.registry.customers.has(id));
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

  /** Sets the blocked flag for each id, creating customers that do not exist yet. Idempotent. */
  async setBlocked(userIds: string[], blocked: boolean): Promise<CustomerView[]> {
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
      }
    });
    for (const record of records) {
      record.blocked = blocked;
      record.updatedAt = now;
      this.ctx.registry.customers.set(record.userId, record);
    }
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
