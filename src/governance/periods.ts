/**
 * @module Budget periods: parses `budget_duration` (`Ns Nm Nh Nd Nw Nmo`) and computes reset
 * instants, calendar-aligned in the configured time zone as LiteLLM's standardized resets
 * are: `1d` → next midnight, `7d`/`Nw` → Monday 00:00, `30d`/`Nmo` → the 1st of a month,
 * `Nh/Nm/Ns` → clock boundaries. A period is [resetAt − duration, resetAt).
 */
import { DateTime } from 'luxon';

export type DurationUnit = 's' | 'm' | 'h' | 'd' | 'w' | 'mo';
export interface BudgetDuration {
  count: number;
  unit: DurationUnit;
  text: string;
}

export class InvalidDurationError extends Error {}

const DURATION = /^(\d+)(mo|s|m|h|d|w)$/;

/** Longest period accepted, in days of each unit: longer ones would reset past year 9999. */
const MAX_DURATION_YEARS = 100;
const UNIT_DAYS: Record<DurationUnit, number> = { s: 1 / 86_400, m: 1 / 1_440, h: 1 / 24, d: 1, w: 7, mo: 30.5 };

/** Returns null for "no reset" ("", "none", "null"); throws InvalidDurationError otherwise. */
export function parseDuration(text: string | null | undefined): BudgetDuration | null {
  if (text === null || text === undefined) return null;
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'none' || trimmed === 'null') return null;
  const match = DURATION.exec(trimmed);
  if (!match) throw new InvalidDurationError(`"${text}" is not a duration like 30s, 15m, 1h, 1d, 7d, 2w or 1mo`);
  const count = Number(match[1]);
  if (!Number.isSafeInteger(count) || count <= 0) throw new InvalidDurationError(`"${text}" must be a positive duration`);
  const unit = match[2] as DurationUnit;
  if (count * UNIT_DAYS[unit] > MAX_DURATION_YEARS * 366) throw new InvalidDurationError(`"${text}" is longer than ${MAX_DURATION_YEARS} years`);
  return { count, unit, text: trimmed };
}

function normalized(duration: BudgetDuration): { unit: 'months' | 'weeks' | 'days' | 'hours' | 'minutes' | 'seconds'; count: number } {
  switch (duration.unit) {
    case 'mo':
      return { unit: 'months', count: duration.count };
    case 'd':
      if (duration.count === 30) return { unit: 'months', count: 1 };
      if (duration.count === 7) return { unit: 'weeks', count: 1 };
      return { unit: 'days', count: duration.count };
    case 'w':
      return { unit: 'weeks', count: duration.count };
    case 'h':
      return { unit: 'hours', count: duration.count };
    case 'm':
      return { unit: 'minutes', count: duration.count };
    case 's':
      return { unit: 'seconds', count: duration.count };
  }
}

/** The first aligned reset instant strictly after `from`. */
export function firstResetAfter(duration: BudgetDuration, from: Date, timezone: string): Date {
  const now = DateTime.fromJSDate(from, { zone: timezone });
  const { unit, count } = normalized(duration);
  let next: DateTime;
  switch (unit) {
    case 'months':
      next = now.startOf('month').plus({ months: count });
      break;
    case 'weeks':
      next = now.startOf('week').plus({ weeks: count }); // luxon weeks start on Monday
      break;
    case 'days':
      next = now.startOf('day').plus({ days: count });
      break;
    default: {
      // Clock boundaries counted from the start of the local day (5m → :00, :05, …).
      const dayStart = now.startOf('day');
      const step = count * ({ hours: 3_600_000, minutes: 60_000, seconds: 1_000 } as const)[unit];
      const elapsed = now.toMillis() - dayStart.toMillis();
      next = dayStart.plus({ milliseconds: (Math.floor(elapsed / step) + 1) * step });
    }
  }
  return next.toJSDate();
}

export function addDuration(instant: Date, duration: BudgetDuration, timezone: string, times = 1): Date {
  const { unit, count } = normalized(duration);
  return DateTime.fromJSDate(instant, { zone: timezone })
    .plus({ [unit]: count * times })
    .toJSDate();
}

export interface Period {
  start: Date;
  /** Exclusive end; null for budgets without a duration (one lifetime period). */
  end: Date | null;
}

export const LIFETIME_START = new Date(0);

/**
 * The period containing `now` for a budget whose next reset is `resetAt`. When `resetAt` is
 * in the past (nobody was around at the reset), it is rolled forward: resets happen at their
 * exact instant, computed, not when a sweep notices.
 */
export function currentPeriod(duration: BudgetDuration | null, resetAt: Date | null, now: Date, timezone: string): Period {
  if (!duration) return LIFETIME;
  // Every request asks; the answer only changes at the reset (luxon's zone arithmetic is not free).
  const key = resetAt && resetAt.getTime() > now.getTime() ? `${duration.count}${duration.unit}\u0000${resetAt.getTime()}\u0000${timezone}` : null;
  const known = key === null ? undefined : periodCache.get(key);
  if (known && known.start.getTime() <= now.getTime()) return known;
  const period = computePeriod(duration, resetAt, now, timezone);
  if (key !== null) {
    if (periodCache.size >= PERIOD_CACHE_SIZE) periodCache.clear();
    periodCache.set(key, period);
  }
  return period;
}

const LIFETIME: Period = Object.freeze({ start: LIFETIME_START, end: null });
/** Periods by duration, next reset and zone; a few budgets make a few entries. */
const periodCache = new Map<string, Period>();
const PERIOD_CACHE_SIZE = 10_000;

function computePeriod(duration: BudgetDuration, resetAt: Date | null, now: Date, timezone: string): Period {
  let end = resetAt ?? firstResetAfter(duration, now, timezone);
  if (end.getTime() <= now.getTime()) {
    // Jump close first for long idle gaps, then step.
    end = firstResetAfter(duration, now, timezone);
  }
  let start = addDuration(end, duration, timezone, -1);
  while (start.getTime() > now.getTime()) {
    end = start;
    start = addDuration(end, duration, timezone, -1);
  }
  return { start, end };
}
