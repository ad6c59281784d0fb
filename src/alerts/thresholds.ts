/**
 * @module Which budget alerts one request crossed, from the customer's period spend before
 * and after it. Pure and exact: thresholds are decimal fractions compared in integer
 * arithmetic against pico-USD, so 0.85 × $10 is exactly $8.5, never 8.499999….
 */
import type { BudgetEvent } from '../ledger/types';
import type { Pico } from '../shared/money';

export type BudgetAlertType = BudgetEvent['type'];

/** A threshold_crossed level: a fraction of max_budget strictly between 0 and 1. */
export interface Threshold {
  /** The fraction as written in the config and in the dedupe key, e.g. "0.85". */
  key: string;
  fraction: number;
  /** The fraction in parts per 10^12, so `spend × 10^12 >= max × parts` is exact. */
  parts: bigint;
}

export const DEFAULT_THRESHOLDS = [0.85, 0.95];

const PARTS = 10n ** 12n;
const FRACTION = /^0?\.(\d{1,12})$/;

/** Parses a fraction such as 0.85 or "0.85"; null when it is not a decimal in (0, 1) with at most 12 digits. */
export function parseThreshold(value: unknown): Threshold | null {
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : typeof value === 'string' ? value.trim() : '';
  const match = FRACTION.exec(text);
  if (!match) return null;
  const digits = match[1]!.replace(/0+$/, '');
  if (!digits) return null;
  const parts = BigInt(digits.padEnd(12, '0'));
  return { key: `0.${digits}`, fraction: Number(`0.${digits}`), parts };
}

export interface BudgetLevels {
  maxBudgetPico: Pico | null;
  softBudgetPico: Pico | null;
}

export interface Crossing {
  type: BudgetAlertType;
  /** The dedupe key part: 'soft', the threshold's key, or '1' for the budget itself. */
  thresholdKey: string;
  /** As in `BudgetEvent.threshold`: the fraction, 1 for budget_crossed, null for the soft budget. */
  threshold: number | null;
}

/**
 * The alerts a request moving spend from `before` to `after` fires: a level L is crossed when
 * before < L <= after (spend reaching max_budget exactly is "crossed", the same `>=` rule as
 * admission). Several at once when one request jumps over several levels; ordered by level
 * type: soft budget, thresholds ascending, then the budget itself.
 */
export function crossings(before: Pico, after: Pico, levels: BudgetLevels, thresholds: readonly Threshold[]): Crossing[] {
  if (after <= before) return [];
  const result: Crossing[] = [];
  const { softBudgetPico: soft, maxBudgetPico: max } = levels;
  if (soft !== null && soft > 0n && before < soft && soft <= after) {
    result.push({ type: 'soft_budget_crossed', thresholdKey: 'soft', threshold: null });
  }
  if (max !== null && max > 0n) {
    for (const threshold of thresholds) {
      const level = max * threshold.parts;
      if (before * PARTS < level && level <= after * PARTS) {
        result.push({ type: 'threshold_crossed', thresholdKey: threshold.key, threshold: threshold.fraction });
      }
    }
    if (before < max && max <= after) result.push({ type: 'budget_crossed', thresholdKey: '1', threshold: 1 });
  }
  return result;
}
