/**
 * @module Rolls budgets into their next period at the exact reset instant (admission also
 * rolls lazily, so no request ever sees a stale period) and persists the new reset time.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { BudgetEntity } from '../store/entities';
import type { Logger } from '../observability/logger';
import type { Registry } from './registry';
import type { InternalResolver } from './resolver';

export class BudgetResetTimer {
  private timer: NodeJS.Timeout | null = null;
  /** Reset instant last seen per budget: a change means the period rolled (here or at admission). */
  private readonly lastSeen = new Map<string, number>();

  constructor(
    private readonly registry: Registry,
    private readonly resolver: InternalResolver,
    private readonly orm: MikroORM,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
  }

  async tick(): Promise<void> {
    const now = this.now();
    const rolled: { budgetId: string; resetAt: Date }[] = [];
    for (const budget of this.registry.budgets.values()) {
      if (!budget.resetAt) continue;
      const before = this.lastSeen.get(budget.budgetId) ?? budget.resetAt.getTime();
      this.resolver.periodOf(budget, now);
      const after = budget.resetAt.getTime();
      this.lastSeen.set(budget.budgetId, after);
      if (after !== before) rolled.push({ budgetId: budget.budgetId, resetAt: budget.resetAt });
    }
    if (!rolled.length) return;
    try {
      const em = this.orm.em.fork();
      for (const { budgetId, resetAt } of rolled) await em.nativeUpdate(BudgetEntity, { budgetId }, { budgetResetAt: resetAt });
    } catch (error) {
      this.logger.warn({ err: error }, 'could not persist budget reset times; will retry');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
