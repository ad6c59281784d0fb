/**
 * The landing page: what was spent (today, this period, last 30 days, the picked range),
 * a chart over the range, who and what spent it, who was refused and why, who is near or
 * over their cap. All from the gateway's `overview` aggregates; refreshed as requests flow.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { OVERVIEW, type OverviewData, type RefusedRequest } from '../api/operations';
import { DateRangePicker, lastDays, type DayRange } from '../components/date-range';
import { ErrorNotice } from '../components/error-notice';
import { SpendChart } from '../components/spend-chart';
import { SpendMeter } from '../components/spend-meter';
import { addDays, browserTimeZone, count, dateTime, dayLabel, dayStart, limitLabel, reasonLabel, usd } from '../format';
import { customerHref, setParams } from '../router';
import { useGraphQL, useSpendUpdates } from '../session';

const DAY_KEY = /^\d{4}-\d{2}-\d{2}$/;

export function rangeFromParams(params: URLSearchParams, fallbackDays = 30): DayRange {
  const from = params.get('from');
  const to = params.get('to');
  if (from && to && DAY_KEY.test(from) && DAY_KEY.test(to) && from <= to) return { from, to };
  return lastDays(fallbackDays);
}

/** [from, to) instants of an inclusive day range in this browser's zone. */
export function rangeInstants(range: DayRange): { from: string; to: string } {
  return { from: dayStart(range.from).toISOString(), to: addDays(dayStart(range.to), 1).toISOString() };
}

function rangeText(range: DayRange): string {
  return range.from === range.to ? dayLabel(range.from) : `${dayLabel(range.from)} – ${dayLabel(range.to)}`;
}

function customerLabel(key: string) {
  return key === '' ? <span className="muted">(no customer)</span> : <a href={customerHref(key)} className="mono">{key}</a>;
}

export function OverviewPage({ params }: { params: URLSearchParams }) {
  const graphql = useGraphQL();
  const range = rangeFromParams(params);
  const [data, setData] = useState<{ overview: OverviewData; refusedRequests: RefusedRequest[] } | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      const instants = rangeInstants(range);
      const today = new Date();
      today.setHours(0, 0, 0, 0);
      const result = await graphql<{ overview: OverviewData; refusedRequests: RefusedRequest[] }>(OVERVIEW, { ...instants, timeZone: browserTimeZone(), todayFrom: today.toISOString() });
      setData(result);
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [graphql, range.from, range.to]);
  useEffect(() => void load(), [load]);

  // At most one refresh every 2 s while requests are metered.
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const latest = useRef(load);
  latest.current = load;
  const refreshSoon = useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      void latest.current();
    }, 2000);
  }, []);
  useEffect(() => () => clearTimeout(timer.current), []);
  useSpendUpdates(null, refreshSoon, refreshSoon);

  const o = data?.overview;
  const loading = <span className="muted">Loading…</span>;
  return (
    <section>
      <div className="page-header">
        <div>
          <h1>Overview</h1>
          <p className="muted">Spend and refusals across every customer. Days are counted in your time zone{o ? ` (${o.timeZone})` : ''}.</p>
        </div>
      </div>
      <div className="range-bar">
        <DateRangePicker value={range} onChange={(next) => setParams('overview', { ...next })} label="Chart range" />
      </div>
      <ErrorNotice error={error} title="Could not load the overview." />

      <div className="stats four">
        <div className="card stat" data-testid="stat-today">
          <h2 className="stat-title">Today</h2>
          <div className="stat-value money">{o ? usd(o.today.spend) : loading}</div>
          <p className="muted small">{o ? `${count(o.today.requests)} requests since midnight` : ' '}</p>
        </div>
        <div className="card stat" data-testid="stat-period">
          <h2 className="stat-title">This period</h2>
          <div className="stat-value money">{o ? usd(o.periodSpend) : loading}</div>
          <p className="muted small">Each customer&apos;s current budget period</p>
        </div>
        <div className="card stat" data-testid="stat-30d">
          <h2 className="stat-title">Last 30 days</h2>
          <div className="stat-value money">{o ? usd(o.last30Days.spend) : loading}</div>
          <p className="muted small">{o ? `${count(o.last30Days.requests)} requests` : ' '}</p>
        </div>
        <div className="card stat" data-testid="stat-range">
          <h2 className="stat-title">{rangeText(range)}</h2>
          <div className="stat-value money">{o ? usd(o.range.spend) : loading}</div>
          <p className="muted small">{o ? `${count(o.range.requests)} requests` : ' '}</p>
        </div>
      </div>

      <div className="card">
        <div className="card-header">
          <h2>Spend per day</h2>
          <span className="muted small">{rangeText(range)}</span>
        </div>
        {o ? <SpendChart points={o.series} label={`Spend per day, ${rangeText(range)}`} /> : <p className="empty">Loading…</p>}
      </div>

      <div className="columns">
        <div className="card">
          <div className="card-header">
            <h2>Top customers</h2>
            <span className="muted small">{rangeText(range)}</span>
          </div>
          <table className="table responsive" data-testid="top-customers">
            <thead>
              <tr>
                <th>Customer</th>
                <th className="number">Spend</th>
                <th className="number">Requests</th>
              </tr>
            </thead>
            <tbody>
              {o?.topCustomers.map((row) => (
                <tr key={row.key} data-customer={row.key}>
                  <td data-label="Customer">{customerLabel(row.key)}</td>
                  <td data-label="Spend" className="number money">{usd(row.spend)}</td>
                  <td data-label="Requests" className="number">{count(row.requests)}</td>
                </tr>
              ))}
              {o && !o.topCustomers.length && (
                <tr>
                  <td colSpan={3} className="empty">No spend in this range.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <div className="card">
          <div className="card-header">
            <h2>Near or over their cap</h2>
            <span className="muted small">80 % or more of the max budget, this period</span>
          </div>
          <table className="table responsive" data-testid="near-cap">
            <thead>
              <tr>
                <th>Customer</th>
                <th>Spend of max budget</th>
              </tr>
            </thead>
            <tbody>
              {o?.nearCap.map((row) => (
                <tr key={row.customerId} data-customer={row.customerId}>
                  <td data-label="Customer">
                    {customerLabel(row.customerId)}
                    <div className="small">{row.used >= 1 ? <span className="pill over_budget">Over budget</span> : <span className="pill near">Near cap</span>}</div>
                  </td>
                  <td data-label="Spend">
                    <SpendMeter spend={row.spend} maxBudget={row.maxBudget} label={`Spend of ${row.customerId}`} />
                  </td>
                </tr>
              ))}
              {o && !o.nearCap.length && (
                <tr>
                  <td colSpan={2} className="empty">Every capped customer is below 80 % of its max budget.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </div>

      <div className="card">
        <div className="card-header">
          <h2>Refused requests</h2>
          <span className="muted small">{rangeText(range)} by reason; today&apos;s below</span>
        </div>
        <ul className="reasons" data-testid="refusals-by-reason">
          {o?.refusalsByReason.map((row) => (
            <li key={row.reason} data-reason={row.reason}>
              <strong>{reasonLabel(row.reason)}</strong>
              <span>
                {count(row.count)} request{row.count === 1 ? '' : 's'} · {count(row.customers)} customer{row.customers === 1 ? '' : 's'}
              </span>
            </li>
          ))}
          {o && !o.refusalsByReason.length && <li className="muted">No request was refused in this range.</li>}
        </ul>
        <RefusalTable rows={data?.refusedRequests ?? null} showCustomer testId="refused-today" empty="No request was refused today." />
      </div>

      <div className="columns">
        <BreakdownCard title="By model" rows={o?.byModel ?? null} keyLabel="Model" render={(key) => <span className="mono">{key}</span>} />
        <BreakdownCard title="By tier" rows={o?.byTier ?? null} keyLabel="Budget in force" render={(key) => (key ? <span className="mono">{key}</span> : <span className="muted">no budget</span>)} />
      </div>
    </section>
  );
}

function BreakdownCard({ title, rows, keyLabel, render }: { title: string; rows: { key: string; spend: number; requests: number }[] | null; keyLabel: string; render: (key: string) => React.ReactNode }) {
  const total = rows?.reduce((sum, row) => sum + row.spend, 0) ?? 0;
  return (
    <div className="card">
      <div className="card-header">
        <h2>{title}</h2>
      </div>
      <table className="table responsive">
        <thead>
          <tr>
            <th>{keyLabel}</th>
            <th className="number">Spend</th>
            <th className="number">Share</th>
          </tr>
        </thead>
        <tbody>
          {rows?.map((row) => (
            <tr key={row.key}>
              <td data-label={keyLabel}>{render(row.key)}</td>
              <td data-label="Spend" className="number money">{usd(row.spend)}</td>
              <td data-label="Share" className="number">{total > 0 ? `${Math.round((row.spend / total) * 100)} %` : '—'}</td>
            </tr>
          ))}
          {rows && !rows.length && (
            <tr>
              <td colSpan={3} className="empty">No spend in this range.</td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Refused requests: one row per customer × model × reason × minute, with how many. */
export function RefusalTable({ rows, showCustomer = false, testId, empty }: { rows: RefusedRequest[] | null; showCustomer?: boolean; testId: string; empty: string }) {
  return (
    <table className="table responsive" data-testid={testId}>
      <thead>
        <tr>
          <th>Last refused</th>
          {showCustomer && <th>Customer</th>}
          <th>Reason</th>
          <th>Limit</th>
          <th>Model</th>
          <th className="number">Status</th>
          <th className="number">Times</th>
        </tr>
      </thead>
      <tbody>
        {rows?.map((row) => (
          <tr key={`${row.customerId}|${row.model}|${row.reason}|${row.firstAt}`} data-refusal={row.reason} title={row.message}>
            <td data-label="Last refused">{dateTime(row.lastAt)}</td>
            {showCustomer && <td data-label="Customer">{customerLabel(row.customerId)}</td>}
            <td data-label="Reason">{reasonLabel(row.reason)}</td>
            <td data-label="Limit">{limitLabel(row.limitType, row.limitValue)}</td>
            <td data-label="Model" className="mono">{row.model}</td>
            <td data-label="Status" className="number">{row.status}</td>
            <td data-label="Times" className="number">{count(row.count)}</td>
          </tr>
        ))}
        {rows && !rows.length && (
          <tr>
            <td colSpan={showCustomer ? 7 : 6} className="empty">{empty}</td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

