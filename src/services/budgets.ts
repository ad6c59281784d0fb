/**
 * @module Budgets and pricing tiers: the one place their rules live (REST, GraphQL and the UI
 * call this). Writes go to the store first, then to the in-memory registry, so the next
 * request sees the change. A budget shared by many customers is a pricing tier: changing
 * it changes the limits of all of them at once; each keeps its own spend.
 */
import { randomUUID } from 'node:crypto';
import { customerIdsOnBudget, customerIdsWithoutBudget } from '../store/customer-store';
import { BudgetEntity, CustomerEntity } from '../store/entities';
import { budgetToEntityData } from '../store/mappers';
import { firstResetAfter } from '../governance/periods';
import type { BudgetRecord } from '../governance/records';
import { GatewayError } from '../shared/errors';
import type { BudgetFields } from './budget-fields';
import type { ServiceContext } from './context';
import type { SpendService } from './spend';
import { invalid, isUniqueViolation } from './validation';

export const MAX_BUDGET_ID_LENGTH = 256;

export class BudgetService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly spend: SpendService,
  ) {}

  get(budgetId: string): BudgetRecord | null {
    const budget = this.ctx.registry.budgets.get(budgetId) ?? null;
    if (budget) this.ctx.resolver.periodOf(budget); // keep reset_at current for display
    return budget;
  }

  require(budgetId: string, field = 'budget_id'): BudgetRecord {
    const budget = this.get(budgetId);
    if (!budget) throw new GatewayError('not_found', `Budget with id '${budgetId}' does not exist.`, field);
    return budget;
  }

  list(): BudgetRecord[] {
    return [...this.ctx.registry.budgets.values()]
      .map((budget) => this.get(budget.budgetId)!)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.budgetId.localeCompare(b.budgetId));
  }

  /** The aligned first reset of a new budget period starting now. */
  firstReset(duration: NonNullable<BudgetRecord['duration']>): Date {
    return firstResetAfter(duration, this.ctx.now(), this.ctx.config.timezone);
  }

  /**
   * Customers linked to each budget, counted by the store in one grouped query on the
   * customers' budget_id index: the count is asked for a page of budgets at a time, and it
   * waits on the database rather than scanning every customer on the event loop.
   */
  async customerCounts(budgetIds: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map(budgetIds.map((id) => [id, 0]));
    if (!budgetIds.length) return counts;
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select budget_id, count(*)::int as customers from customers
       where budget_id = any(array(select jsonb_array_elements_text(?::jsonb))) group by budget_id`,
      [JSON.stringify([...new Set(budgetIds)])],
    );
    for (const row of result.rows as { budget_id: string; customers: number }[]) counts.set(row.budget_id, Number(row.customers));
    return counts;
  }

  async create(budgetId: string | null | undefined, fields: BudgetFields, actor: string): Promise<BudgetRecord> {
    const id = budgetId ?? randomUUID();
    if (typeof id !== 'string' || !id.trim() || id.length > MAX_BUDGET_ID_LENGTH) {
      throw invalid('budget_id', `must be a non-empty string of at most ${MAX_BUDGET_ID_LENGTH} characters`);
    }
    if (this.ctx.registry.budgets.has(id)) throw new GatewayError('bad_request', `Budget with id '${id}' already exists.`, 'budget_id');
    const now = this.ctx.now();
    const record: BudgetRecord = {
      budgetId: id,
      maxBudget: fields.maxBudget ?? null,
      softBudget: fields.softBudget ?? null,
      rpmLimit: fields.rpmLimit ?? null,
      tpmLimit: fields.tpmLimit ?? null,
      maxParallelRequests: fields.maxParallelRequests ?? null,
      duration: fields.budgetDuration ?? null,
      resetAt: fields.budgetResetAt ?? (fields.budgetDuration ? this.firstReset(fields.budgetDuration) : null),
      modelMaxBudget: fields.modelMaxBudget ?? null,
      priceMultiplier: fields.priceMultiplier ?? null,
      modelPrices: fields.modelPrices ?? null,
      createdBy: actor,
      updatedBy: actor,
      createdAt: now,
      updatedAt: now,
    };
    const em = this.ctx.orm.em.fork();
    try {
      await em.insert(BudgetEntity, budgetToEntityData(record));
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new GatewayError('bad_request', `Budget with id '${id}' already exists.`, 'budget_id');
      }
      throw error;
    }
    this.ctx.registry.budgets.set(id, record);
    await this.ctx.invalidation.publish([{ kind: 'budget', id }]);
    if (id === this.ctx.registry.defaultBudgetId) {
      this.ctx.logger.info({ budgetId: id }, 'default customer budget (max_end_user_budget_id) now exists and applies');
      // Customers without a budget move from a lifetime period to this budget's period.
      await this.spend.recompute(await this.customersWithoutBudget());
    }
    return record;
  }

  async update(budgetId: string, fields: BudgetFields, actor: string): Promise<BudgetRecord> {
    const current = this.require(budgetId);
    const now = this.ctx.now();
    const next: BudgetRecord = { ...current, updatedBy: actor, updatedAt: now };
    if (fields.maxBudget !== undefined) next.maxBudget = fields.maxBudget;
    if (fields.softBudget !== undefined) next.softBudget = fields.softBudget;
    if (fields.rpmLimit !== undefined) next.rpmLimit = fields.rpmLimit;
    if (fields.tpmLimit !== undefined) next.tpmLimit = fields.tpmLimit;
    if (fields.maxParallelRequests !== undefined) next.maxParallelRequests = fields.maxParallelRequests;
    if (fields.modelMaxBudget !== undefined) next.modelMaxBudget = fields.modelMaxBudget;
    if (fields.priceMultiplier !== undefined) next.priceMultiplier = fields.priceMultiplier;
    if (fields.modelPrices !== undefined) next.modelPrices = fields.modelPrices;
    const durationChanged = fields.budgetDuration !== undefined && fields.budgetDuration?.text !== current.duration?.text;
    if (fields.budgetDuration !== undefined) next.duration = fields.budgetDuration;
    if (fields.budgetResetAt !== undefined) next.resetAt = fields.budgetResetAt;
    else if (durationChanged) next.resetAt = next.duration ? this.firstReset(next.duration) : null;
    const em = this.ctx.orm.em.fork();
    const { budgetId: _id, createdAt: _created, ...data } = budgetToEntityData(next);
    await em.nativeUpdate(BudgetEntity, { budgetId }, data);
    // Mutate in place: decisions in flight and every customer on the tier see one object.
    Object.assign(current, next);
    await this.ctx.invalidation.publish([{ kind: 'budget', id: budgetId }]);
    if (durationChanged || fields.budgetResetAt !== undefined) await this.spend.recompute(await this.affectedCustomers(budgetId));
    return current;
  }

  /** Refused while customers use the budget, naming them, unless `detach` unlinks them first. */
  async delete(budgetId: string, detach: boolean): Promise<BudgetRecord> {
    const budget = this.require(budgetId, 'id');
    const users = await customerIdsOnBudget(this.ctx.orm, budgetId);
    if (users.length && !detach) {
      const names = users.slice(0, 20);
      const more = users.length > names.length ? ` and ${users.length - names.length} more` : '';
      throw new GatewayError(
        'bad_request',
        `Budget '${budgetId}' is used by ${users.length} customer(s): ${names.join(', ')}${more}. Move them to another budget first, or pass "detach": true to unlink them.`,
        'id',
      );
    }
    await this.ctx.ledger.flush();
    await this.ctx.orm.em.fork().transactional(async (em) => {
      if (users.length) await em.nativeUpdate(CustomerEntity, { budgetId }, { budgetId: null, updatedAt: this.ctx.now() });
      await em.nativeDelete(BudgetEntity, { budgetId });
    });
    for (const id of users) {
      const cached = this.ctx.registry.customers.peek(id);
      if (cached) cached.budgetId = null;
    }
    this.ctx.registry.budgets.delete(budgetId);
    await this.ctx.invalidation.publish([{ kind: 'budget', id: budgetId }, ...users.map((id) => ({ kind: 'customer' as const, id }))]);
    await this.spend.recompute(users);
    return budget;
  }

  private customersWithoutBudget(): Promise<string[]> {
    return customerIdsWithoutBudget(this.ctx.orm);
  }

  private async affectedCustomers(budgetId: string): Promise<string[]> {
    const ids = await customerIdsOnBudget(this.ctx.orm, budgetId);
    return budgetId === this.ctx.registry.defaultBudgetId ? ids.concat(await this.customersWithoutBudget()) : ids;
  }
}
