/**
 * @module The in-memory shape of what governance decides on: budgets, customers, keys.
 * Loaded from the store at start and kept current by the services; the hot path reads only
 * these, never the database.
 */
import type { CustomerPricing } from '../pricing/customer-price';
import type { Pico } from '../shared/money';
import type { BudgetDuration } from './periods';

export interface ModelBudgetRecord {
  maxBudget: Pico;
  duration: BudgetDuration | null;
}

/** A budget also sets its customers' prices (`CustomerPricing`): what they are charged, not what they cost. */
export interface BudgetRecord extends CustomerPricing {
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
  /** Its customers are admitted only while their prepaid credits cover the request. */
  prepaid: boolean;
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
  /** Admitted only while its prepaid credits cover the request (also when its budget is prepaid). */
  prepaid: boolean;
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
  /** A key bound to a customer: its requests are that customer's, always (and it reads only its usage). */
  customerId: string | null;
  /** Per-key limits of a bound key, on top of its customer's budget. */
  keyLimits: KeyLimits | null;
}

export interface KeyLimits {
  rpmLimit: number | null;
  /** Lifetime spend (charges) of the key. */
  maxBudget: Pico | null;
}
