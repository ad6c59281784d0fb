/** How numbers, money and times read on the page. */

/** Dollars with enough digits to show a single request's cost (often a fraction of a cent). */
export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  if (value === 0) return '$0.00';
  const magnitude = Math.abs(value);
  if (magnitude >= 0.01) return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: magnitude >= 100 ? 2 : 4 })}`;
  // Below a cent: three significant digits, e.g. $0.0000135.
  const digits = Math.min(12, 2 - Math.floor(Math.log10(magnitude)));
  return `$${value.toFixed(digits).replace(/0+$/, '')}`;
}

export function count(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : value.toLocaleString('en-US');
}

/** A date and time; the year is shown when it is not this year. */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  const year = date.getFullYear() !== new Date().getFullYear() ? { year: 'numeric' as const } : {};
  return date.toLocaleString('en-US', { ...year, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** A day (YYYY-MM-DD key) as "Nov 28", or "Nov 28, 2025" in another year than `reference`'s. */
export function dayLabel(key: string, referenceYear = new Date().getFullYear()): string {
  const [year, month, day] = key.split('-').map(Number);
  const date = new Date(year!, month! - 1, day!);
  return date.toLocaleDateString('en-US', { month: 'short', day: 'numeric', ...(year !== referenceYear ? { year: 'numeric' } : {}) });
}

/** YYYY-MM-DD of a date in this browser's time zone. */
export function dayKey(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** Local midnight of a YYYY-MM-DD key. */
export function dayStart(key: string): Date {
  const [year, month, day] = key.split('-').map(Number);
  return new Date(year!, month! - 1, day!);
}

export function addDays(date: Date, days: number): Date {
  const next = new Date(date);
  next.setDate(next.getDate() + days);
  return next;
}

/** This browser's IANA time zone, so the gateway counts days as the operator sees them. */
export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

const STATUS_LABELS: Record<string, string> = { active: 'Active', over_budget: 'Over budget', rate_limited: 'Rate-limited', blocked: 'Blocked' };

export function statusLabel(status: string): string {
  return STATUS_LABELS[status] ?? status;
}

const REASON_LABELS: Record<string, string> = {
  budget_exceeded: 'Over budget',
  rate_limit_exceeded: 'Rate limit',
  customer_blocked: 'Blocked',
  service_unavailable: 'Counters unreachable',
};

export function reasonLabel(reason: string): string {
  return REASON_LABELS[reason] ?? reason;
}

const LIMIT_LABELS: Record<string, string> = { max_budget: 'Max budget', model_max_budget: 'Model budget', rpm: 'Requests/min', tpm: 'Tokens/min', parallel: 'Parallel requests', blocked: 'Blocked' };

export function limitLabel(type: string | null, value: string | null): string {
  if (!type) return '—';
  return value ? `${LIMIT_LABELS[type] ?? type} ${value}` : (LIMIT_LABELS[type] ?? type);
}

/** The gateway's field names, as the forms label them, so errors read in words. */
const FIELD_LABELS: Record<string, string> = {
  maxBudget: 'Max budget',
  softBudget: 'Soft budget',
  rpmLimit: 'Requests per minute',
  tpmLimit: 'Tokens per minute',
  maxParallelRequests: 'Parallel requests',
  budgetDuration: 'Budget duration',
  resetAt: 'Reset time',
  budgetId: 'Budget',
  moveTo: 'Move to',
  timeZone: 'Time zone',
  allowedModelRegion: 'Region',
  defaultModel: 'Default model',
};

/** "Invalid value for maxBudget: must be >= 0" → "Max budget: must be >= 0". */
export function humanizeMessage(message: string): string {
  return message
    .replace(/^Invalid value for (\w+): /, (_, field: string) => `${FIELD_LABELS[field] ?? field}: `)
    .replace(/\b(maxBudget|softBudget|rpmLimit|tpmLimit|maxParallelRequests|budgetDuration)\b/g, (field) => (FIELD_LABELS[field] ?? field).toLowerCase());
}
