/**
 * @module Budgets and pricing tiers: the one place their rules live (REST, GraphQL and the UI
 * call this). Writes go to the store first, then to the in-memory registry, so the next
 * request sees the change. A budget shared by many customers is a pricing tier: changing
 * it changes the limits of all of them at once; each keeps its own spend.
 */
import { randomUUID } from 'node:crypto';
import { customerIdsOnBudget } from '../store/customer-store';
import { BudgetEntity, CustomerEntity } from '../store/entities';
import { budgetToEntityData } from '../store/mappers';
import { firstResetAfter } from '../governance/periods';
import type { BudgetRecord } from '../governance/records';
import { GatewayError } from '../shared/errors';
import { SNAKE_NAMES, type BudgetFields, type FieldNames } from './budget-fields';
import { picoToDecimalString } from '../shared/money';
import type { ServiceContext } from './context';
import type { SpendService } from './spend';
import { invalid, isUniqueViolation } from './validation';
import { writeAudit } from './history';

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
   * Customers linked to each budget, read from the counts triggers keep on `customers`
   * (Migration20261201130000): a read costs a few rows per budget however many customers
   * there are.
   */
  async customerCounts(budgetIds: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map(budgetIds.map((id) => [id, 0]));
    if (!budgetIds.length) return counts;
    // The default budget applies to every customer without a budget of its own ('' here): they count too.
    const defaultId = this.ctx.registry.defaultBudgetId;
    const keys = [...new Set(budgetIds)].concat(defaultId !== null && counts.has(defaultId) ? [''] : []);
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select budget_id, sum(customers)::bigint::text as customers from budget_customer_counts
       where budget_id = any(array(select jsonb_array_elements_text(?::jsonb))) group by budget_id`,
      [JSON.stringify(keys)],
    );
    for (const row of result.rows as { budget_id: string; customers: string }[]) {
      const id = row.budget_id === '' ? defaultId! : row.budget_id;
      counts.set(id, (counts.get(id) ?? 0) + Number(row.customers));
    }
    return counts;
  }

  /** Customers under this budget: linked to it, plus, for the default, every customer without one. */
  async customerCount(budgetId: string): Promise<number> {
    return (await this.customerCounts([budgetId])).get(budgetId) ?? 0;
  }

  /** The budget litellm_settings.max_end_user_budget_id names (it may not exist yet). */
  isDefault(budgetId: string): boolean {
    return budgetId === this.ctx.registry.defaultBudgetId;
  }

  async create(budgetId: string | null | undefined, fields: BudgetFields, actor: string, names: FieldNames = SNAKE_NAMES): Promise<BudgetRecord> {
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
      prepaid: fields.prepaid ?? false,
      createdBy: actor,
      updatedBy: actor,
      createdAt: now,
      updatedAt: now,
    };
    checkSoftBelowMax(record, names);
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
      // Customers without a budget move from a lifetime period to this budget's period: those
      // who spent since its start get their counter (read from the rollups, not per customer).
      await this.spend.recomputeBudget(id);
    }
    return record;
  }

  async update(budgetId: string, fields: BudgetFields, actor: string, names: FieldNames = SNAKE_NAMES): Promise<BudgetRecord> {
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
    if (fields.prepaid !== undefined) next.prepaid = fields.prepaid;
    const durationChanged = fields.budgetDuration !== undefined && fields.budgetDuration?.text !== current.duration?.text;
    if (fields.budgetDuration !== undefined) next.duration = fields.budgetDuration;
    if (fields.budgetResetAt !== undefined) next.resetAt = fields.budgetResetAt;
    else if (durationChanged) next.resetAt = next.duration ? this.firstReset(next.duration) : null;
    checkSoftBelowMax(next, names);
    const em = this.ctx.orm.em.fork();
    const { budgetId: _id, createdAt: _created, ...data } = budgetToEntityData(next);
    await em.nativeUpdate(BudgetEntity, { budgetId }, data);
    const previousModelBudgets = current.modelMaxBudget;
    // Mutate in place: decisions in flight and every customer on the tier see one object.
    Object.assign(current, next);
    await this.ctx.invalidation.publish([{ kind: 'budget', id: budgetId }]);
    const movedModels = Object.entries(next.modelMaxBudget ?? {})
      .filter(([model, modelBudget]) => {
        const before = previousModelBudgets?.[model];
        return !before || before.duration?.text !== modelBudget.duration?.text;
      })
      .map(([model]) => model);
    if (durationChanged || fields.budgetResetAt !== undefined) await this.spend.recomputeBudget(budgetId);
    // A model budget added, or whose period changed: its counters start from what the model's
    // spend since the new start has been, as the budget's own counter does.
    if (movedModels.length) await this.spend.recomputeBudgetModels(budgetId, movedModels);
    return current;
  }

  /**
   * Refused (409) for the configured default budget: deleting it would uncap every customer
   * without a budget of their own, and walk-ins. Refused (409) while customers use it, naming
   * them, unless `moveTo` names a budget to move them to, or `detach` unlinks them (the
   * default budget then applies to them).
   */
  async delete(budgetId: string, detach: boolean, moveTo: string | null = null, actor = 'admin'): Promise<BudgetRecord> {
    const budget = this.require(budgetId, 'id');
    if (this.isDefault(budgetId)) {
      const count = await this.customerCount(budgetId);
      throw new GatewayError(
        'conflict',
        `Budget '${budgetId}' is the default budget (litellm_settings.max_end_user_budget_id): deleting it would leave ${count} customer(s) without a budget of their own, and every new customer, with no cap. Point max_end_user_budget_id at another budget first.`,
        'id',
      );
    }
    if (moveTo !== null) {
      if (moveTo === budgetId) throw new GatewayError('bad_request', 'moveTo must name another budget than the one deleted.', 'moveTo');
      this.require(moveTo, 'moveTo');
    }
    const users = await customerIdsOnBudget(this.ctx.orm, budgetId);
    if (users.length && !detach && moveTo === null) {
      const names = users.slice(0, 20);
      const more = users.length > names.length ? ` and ${users.length - names.length} more` : '';
      throw new GatewayError(
        'conflict',
        `Budget '${budgetId}' is used by ${users.length} customer(s): ${names.join(', ')}${more}. Move them to another budget first, or pass "detach": true to unlink them.`,
        'id',
      );
    }
    const target = moveTo;
    await this.ctx.ledger.flush();
    await this.ctx.orm.em.fork().transactional(async (em) => {
      if (users.length) await em.nativeUpdate(CustomerEntity, { budgetId }, { budgetId: target, updatedAt: this.ctx.now() });
      await em.nativeDelete(BudgetEntity, { budgetId });
      for (const id of users) {
        await writeAudit(em, { customerId: id, action: 'updated', actor, changes: { budgetId: [budgetId, target] }, createdAt: this.ctx.now() });
      }
    });
    for (const id of users) {
      const cached = this.ctx.registry.customers.peek(id);
      if (cached) cached.budgetId = target;
    }
    this.ctx.registry.budgets.delete(budgetId);
    await this.ctx.invalidation.publish([{ kind: 'budget', id: budgetId }, ...users.map((id) => ({ kind: 'customer' as const, id }))]);
    await this.spend.recompute(users);
    return budget;
  }

}

/** A soft budget (alert only) above the max budget could never fire before the cap refuses. */
export function checkSoftBelowMax(budget: Pick<BudgetRecord, 'softBudget' | 'maxBudget'>, names: FieldNames = SNAKE_NAMES): void {
  if (budget.softBudget !== null && budget.maxBudget !== null && budget.softBudget > budget.maxBudget) {
    throw invalid(names.softBudget, `must not exceed ${names.maxBudget} (soft ${picoToDecimalString(budget.softBudget)} > max ${picoToDecimalString(budget.maxBudget)} USD)`);
  }
}
