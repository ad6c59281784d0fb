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

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString('en-US', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** YYYY-MM-DD of a date in this browser's time zone. */
export function dayKey(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
