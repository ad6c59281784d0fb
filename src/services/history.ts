/**
 * @module What happened to a customer, from the database: budget alerts fired (the
 * budget_alerts table the alert detector writes in the ledger's transaction) and the audit
 * trail of changes made to it (customer_audit, written by services/customers.ts).
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { BudgetEvent } from '../ledger/types';
import { CustomerAuditEntity } from '../store/entities';
import type { ServiceContext } from './context';

export interface AuditEntry {
  id: string;
  customerId: string;
  action: string;
  actor: string;
  changes: Record<string, [unknown, unknown]>;
  createdAt: Date;
}

/** The audit row for a change, or null when nothing changed. Written by the caller's transaction. */
export async function writeAudit(em: EntityManager, entry: Omit<AuditEntry, 'id'>): Promise<void> {
  if (entry.action === 'updated' && !Object.keys(entry.changes).length) return;
  await em.insert(CustomerAuditEntity, { id: randomUUID(), ...entry });
}

/** {field: [before, after]} for the fields whose value differs. */
export function changesBetween<T extends object>(before: T | null, after: T, fields: (keyof T & string)[]): Record<string, [unknown, unknown]> {
  const changes: Record<string, [unknown, unknown]> = {};
  for (const field of fields) {
    const a = before ? (before[field] ?? null) : null;
    const b = after[field] ?? null;
    if (a !== b) changes[field] = [a, b];
  }
  return changes;
}

export class HistoryService {
  constructor(private readonly ctx: ServiceContext) {}

  /** A customer's budget alerts, newest first (they survive restarts and page reloads). */
  async alerts(customerId: string, first: number): Promise<BudgetEvent[]> {
    await this.ctx.ledger.flush();
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(
      `select event_id, type, customer_id, budget_id, threshold_key, spend_pico, max_budget_pico, soft_budget_pico, period_start, request_id, created_at
       from budget_alerts where customer_id = ? order by created_at desc limit ${Math.max(1, Math.min(first, 500))}`,
      [customerId],
    );
    return (result.rows as Record<string, string | null>[]).map((row) => ({
      eventId: row.event_id!,
      type: row.type as BudgetEvent['type'],
      customerId: row.customer_id!,
      budgetId: row.budget_id,
      threshold: row.threshold_key === 'soft' ? null : Number(row.threshold_key),
      spendPico: BigInt(row.spend_pico!),
      maxBudgetPico: row.max_budget_pico === null ? null : BigInt(row.max_budget_pico),
      softBudgetPico: row.soft_budget_pico === null ? null : BigInt(row.soft_budget_pico),
      periodStartMs: new Date(row.period_start!).getTime(),
      requestId: row.request_id!,
      atMs: new Date(row.created_at!).getTime(),
    }));
  }

  async audit(customerId: string, first: number): Promise<AuditEntry[]> {
    const rows = await this.ctx.orm.em.fork().find(CustomerAuditEntity, { customerId }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: Math.max(1, Math.min(first, 500)) });
    return rows.map((row) => ({ id: row.id, customerId: row.customerId, action: row.action, actor: row.actor, changes: row.changes, createdAt: row.createdAt }));
  }
}
