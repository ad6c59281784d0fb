/**
 * @module The in-memory shape of what governance decides on: budgets, customers, keys.
 * Loaded from the store at start and kept current by the services; the hot path reads only
 * these, never the database.
 */
import type { Pico } from '../shared/money';
import type { BudgetDuration } from './periods';

export interface ModelBudgetRecord {
  maxBudget: Pico;
  duration: BudgetDuration | null;
}

export interface BudgetRecord {
  budgetId: string;
  maxBudget: Pico | null;
  softBudget: Pico | null;
  rpmLimit: number | null;
  tpmLimit: number | null;
  maxParallelRequests: number | null;
  duration: BudgetDuration | null;
  /** Next reset instant (end of the current period); rolled forward at the exact instant. */
  resetAt: Date | null;
  modelMaxBudget: Record<string, ModelBudgetRecord> | null;
  createdBy: string | null;
  updatedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface CustomerRecord {
  userId: string;
  alias: string | null;
  blocked: boolean;
  budgetId: string | null;
  allowedModelRegion: string | null;
  defaultModel: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type KeyScope = 'admin' | 'inference';

export interface Principal {
  kind: 'master' | 'virtual';
  /** The key's stored (keyed) hash: for lookups inside this process only, never shown or stored elsewhere. */
  keyHash: string;
  alias: string | null;
  scope: KeyScope;
  keyId: string | null;
}
