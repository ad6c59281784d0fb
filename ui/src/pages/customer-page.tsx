/**
 * One customer: status that tells the truth, live spend against its budget with what remains
 * and when it resets, spend over a date range (chart, by model, its requests), past periods,
 * refused requests, budget alerts (from the database, and live), its audit trail; edit its
 * alias, tier and own limits; block or unblock it.
 */
import { useCallback, useEffect, useState } from 'react';
import {
  BLOCK,
  BUDGET_EVENT,
  CUSTOMER,
  CUSTOMER_HISTORY,
  CUSTOMER_SERIES,
  SPEND_LOGS,
  UNBLOCK,
  type AuditEntry,
  type BudgetAlert,
  type Customer,
  type RefusedRequest,
  type ReportRow,
  type SpendLog,
  type SpendPeriod,
  type SpendSlice,
  type SpendUpdate,
} from '../api/operations';
import { DateRangePicker } from '../components/date-range';
import { ErrorNotice } from '../components/error-notice';
import { SpendChart } from '../components/spend-chart';
import { SpendMeter } from '../components/spend-meter';
import { StatusPill } from '../components/status-pill';
import { browserTimeZone, count, dateTime, dayKey, dayLabel, usd } from '../format';
import { setParams } from '../router';
import { useGraphQL, useLiveSubscription, useSpendUpdates } from '../session';
import { TierLabel } from './customers-page';
import { CustomerEditDialog } from './customer-edit';
import { CreditsCard } from './customer-credits';
import { RefusalTable, rangeFromParams, rangeInstants } from './overview-page';

const LOG_PAGE = 20;

function alertText(alert: BudgetAlert): string {
  const spend = `spend ${usd(alert.spend)}`;
  if (alert.type === 'soft_budget_crossed') return `Soft budget of ${usd(alert.softBudget)} crossed (${spend}).`;
  if (alert.type === 'credits_exhausted') return `Credits exhausted: ${usd(Math.max(0, (alert.maxBudget ?? 0) - alert.spend))} left of ${usd(alert.maxBudget)} granted; requests are refused until credits are granted.`;
  if (alert.type === 'credits_low') return `Credits low: ${usd((alert.maxBudget ?? 0) - alert.spend)} left of ${usd(alert.maxBudget)} granted.`;
  if (alert.type === 'budget_crossed') return `Max budget of ${usd(alert.maxBudget)} reached (${spend}): further requests are refused until the period resets.`;
  return `${Math.round((alert.threshold ?? 0) * 100)} % of the max budget of ${usd(alert.maxBudget)} used (${spend}).`;
}

function describeChange(field: string, [before, after]: [unknown, unknown]): string {
  const show = (value: unknown) => (value === null || value === undefined ? 'none' : typeof value === 'object' ? JSON.stringify(value) : String(value));
  if (field === 'limits') return `own limits set: ${show(after)}`;
  if (field === 'credits') {
    const grant = (after ?? before) as { reference?: string; amount?: number; kind?: string; expires_at?: string | null } | null;
    if (!grant) return 'credits';
    const what = `${usd(grant.amount ?? 0)} ${grant.kind ?? ''} (reference ${grant.reference ?? '?'})`;
    return after ? `granted ${what}${grant.expires_at ? `, expires ${dateTime(grant.expires_at)}` : ''}` : `voided ${what}`;
  }
  return `${field}: ${show(before)} → ${show(after)}`;
}

interface Logs {
  nodes: SpendLog[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

interface History {
  spendPeriods: SpendPeriod[];
  refusedRequests: RefusedRequest[];
  budgetAlerts: BudgetAlert[];
  customerAudit: AuditEntry[];
}

export function CustomerPage({ id, params }: { id: string; params: URLSearchParams }) {
  const graphql = useGraphQL();
  const range = rangeFromParams(params);
  const [customer, setCustomer] = useState<Customer | null | undefined>(undefined);
  const [series, setSeries] = useState<SpendSlice[] | null>(null);
  const [models, setModels] = useState<ReportRow[]>([]);
  const [logs, setLogs] = useState<Logs | null>(null);
  const [history, setHistory] = useState<History | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [editing, setEditing] = useState(false);
  const [lastUpdate, setLastUpdate] = useState<string | null>(null);
  const [flash, setFlash] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const instants = rangeInstants(range);
      const [found, chart, spendLogs, past] = await Promise.all([
        graphql<{ customer: Customer | null }>(CUSTOMER, { id }),
        graphql<{ overview: { series: SpendSlice[] }; spendReport: ReportRow[] }>(CUSTOMER_SERIES, { ...instants, timeZone: browserTimeZone(), customerId: id }),
        graphql<{ spendLogs: Logs }>(SPEND_LOGS, { customerId: id, first: LOG_PAGE, ...instants }),
        graphql<History>(CUSTOMER_HISTORY, { customerId: id }),
      ]);
      setCustomer(found.customer);
      setSeries(chart.overview.series);
      setModels(chart.spendReport);
      setLogs(spendLogs.spendLogs);
      setHistory(past);
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [graphql, id, range.from, range.to]);
  useEffect(() => void load(), [load]);

  const inRange = (at: string) => {
    const day = dayKey(new Date(at));
    return day >= range.from && day <= range.to;
  };

  useSpendUpdates(
    id,
    (update: SpendUpdate) => {
      setCustomer((current) => current && { ...current, spend: update.spend, status: current.status === 'active' && current.budget?.maxBudget != null && update.spend >= current.budget.maxBudget ? 'over_budget' : current.status });
      setLastUpdate(update.requestId);
      if (!inRange(update.at)) return;
      const day = dayKey(new Date(update.at));
      setSeries((current) => current && current.map((point) => (point.key === day ? { ...point, spend: point.spend + update.cost, requests: point.requests + 1 } : point)));
      setModels((current) => {
        const found = current.some((row) => row.key === update.model);
        const next = found
          ? current.map((row) => (row.key === update.model ? { ...row, spend: row.spend + update.cost, requests: row.requests + 1 } : row))
          : [...current, { key: update.model, spend: update.cost, requests: 1 }];
        return next.sort((a, b) => b.spend - a.spend);
      });
      setLogs((current) => {
        if (!current || current.nodes.some((row) => row.requestId === update.requestId)) return current;
        const row: SpendLog = { requestId: update.requestId, model: update.model, promptTokens: update.promptTokens, completionTokens: update.completionTokens, cost: update.cost, costSource: '', status: 'success', createdAt: update.at };
        return { ...current, nodes: [row, ...current.nodes] };
      });
    },
    () => void load(),
  );

  useLiveSubscription<BudgetAlert>(
    BUDGET_EVENT,
    { customerId: id },
    (alert) => setHistory((current) => current && (current.budgetAlerts.some((a) => a.id === alert.id) ? current : { ...current, budgetAlerts: [alert, ...current.budgetAlerts] })),
    () => undefined,
  );

  const loadMore = async () => {
    if (!logs?.pageInfo.endCursor) return;
    try {
      const more = await graphql<{ spendLogs: Logs }>(SPEND_LOGS, { customerId: id, first: LOG_PAGE, after: logs.pageInfo.endCursor, ...rangeInstants(range) });
      setLogs({ nodes: [...logs.nodes, ...more.spendLogs.nodes], pageInfo: more.spendLogs.pageInfo });
    } catch (caught) {
      setActionError(caught);
    }
  };

  const setBlocked = async (blocked: boolean) => {
    setBusy(true);
    setActionError(null);
    try {
      const data = await graphql<{ blockCustomers?: Customer[]; unblockCustomers?: Customer[] }>(blocked ? BLOCK : UNBLOCK, { ids: [id] });
      setCustomer((data.blockCustomers ?? data.unblockCustomers)![0]!);
      void load();
    } catch (caught) {
      setActionError(caught);
    } finally {
      setBusy(false);
    }
  };

  if (customer === null) {
    return (
      <section>
        <a href="#/customers" className="back">
          ← Customers
        </a>
        <div className="notice error" role="alert">
          No customer with id “{id}”. Customers appear with their first request, or through “createCustomer”.
        </div>
      </section>
    );
  }

  const budget = customer?.budget ?? null;
  const remaining = budget?.maxBudget != null && customer ? Math.max(0, budget.maxBudget - customer.spend) : null;
  const rangeTotal = series?.reduce((sum, point) => sum + point.spend, 0) ?? 0;
  const rangeRequests = series?.reduce((sum, point) => sum + point.requests, 0) ?? 0;
  const latestAlert = history?.budgetAlerts[0] ?? null;
  const rangeName = range.from === range.to ? dayLabel(range.from) : `${dayLabel(range.from)} – ${dayLabel(range.to)}`;
  return (
    <section>
      <a href="#/customers" className="back">
        ← Customers
      </a>
      <div className="page-header">
        <div>
          <h1>
            <span className="mono">{id}</span> {customer && <StatusPill status={customer.status} />}
          </h1>
          <p className="muted">{customer ? (customer.alias ?? 'No alias') : 'Loading…'}</p>
        </div>
        {customer && (
          <div className="header-actions">
            <button type="button" className="button" onClick={() => setEditing(true)}>
              Edit customer
            </button>
            <button type="button" className={customer.blocked ? 'button primary' : 'button danger'} disabled={busy} onClick={() => void setBlocked(!customer.blocked)}>
              {customer.blocked ? 'Unblock customer' : 'Block customer'}
            </button>
          </div>
        )}
      </div>
      <ErrorNotice error={error} title="Could not load this customer." />
      <ErrorNotice error={actionError} />
      {flash && (
        <div className="notice success" role="status">
          {flash}
        </div>
      )}
      {customer?.status === 'over_budget' && (
        <div className="notice error" role="status">
          Over budget: spend {usd(customer.spend)} reached the max budget of {usd(budget?.maxBudget)}. Requests are refused with 429 budget_exceeded{budget?.resetAt ? ` until the period resets (${dateTime(budget.resetAt)})` : ' (this budget has no period: raise the max budget or move the customer to another tier)'}.
        </div>
      )}
      {customer?.status === 'rate_limited' && (
        <div className="notice warning" role="status">
          Rate-limited: requests were refused by a rate limit in the last minute (see Refused requests below).
        </div>
      )}
      {customer?.blocked && (
        <div className="notice warning" role="status">
          This customer is blocked: its requests are refused with 403 customer_blocked until it is unblocked.
        </div>
      )}
      {latestAlert && (
        <div className="notice warning" role="status" data-testid="budget-alert">
          <strong>Latest budget alert, {dateTime(latestAlert.at)}: </strong>
          {alertText(latestAlert)}
        </div>
      )}

      <div className="stats">
        <div className="card stat">
          <h2 className="stat-title">Spend this period</h2>
          {customer ? <SpendMeter spend={customer.spend} maxBudget={budget?.maxBudget} label="Spend this period" large /> : <span className="muted">Loading…</span>}
          <p className="muted small" data-testid="remaining">
            {customer ? (remaining !== null ? `${usd(remaining)} remaining` : 'No max budget: spend is not capped') : ' '}
          </p>
          <p className="muted small" data-testid="last-update">
            {lastUpdate ? `Updated live by request ${lastUpdate.slice(0, 8)}…` : customer ? (budget?.resetAt ? `Resets ${dateTime(budget.resetAt)}` : 'Never resets (no budget period)') : ' '}
          </p>
        </div>
        <div className="card stat">
          <h2 className="stat-title">Budget in force</h2>
          <div className="stat-value">{customer ? <TierLabel customer={customer} /> : <span className="muted">Loading…</span>}</div>
          {customer && budget && (
            <dl className="limits">
              <dt>Max</dt>
              <dd>{usd(budget.maxBudget)}</dd>
              <dt>Soft</dt>
              <dd>{usd(budget.softBudget)}</dd>
              <dt>RPM</dt>
              <dd>{count(budget.rpmLimit)}</dd>
              <dt>TPM</dt>
              <dd>{count(budget.tpmLimit)}</dd>
              <dt>Parallel</dt>
              <dd>{count(budget.maxParallelRequests)}</dd>
              <dt>Period</dt>
              <dd>{budget.budgetDuration ?? 'none'}</dd>
            </dl>
          )}
          {customer && !budget && <p className="muted small">No budget in force: spend is tracked but not capped.</p>}
        </div>
        <div className="card stat">
          <h2 className="stat-title">{rangeName}</h2>
          <div className="stat-value money">{series ? usd(rangeTotal) : <span className="muted">Loading…</span>}</div>
          <p className="muted small">{series ? `${count(rangeRequests)} requests` : ' '}</p>
          <ul className="models">
            {models.slice(0, 4).map((row) => (
              <li key={row.key}>
                <span className="mono">{row.key}</span>
                <span>{usd(row.spend)}</span>
              </li>
            ))}
          </ul>
        </div>
      </div>

      {customer?.prepaid && <CreditsCard customerId={id} refresh={lastUpdate} onGranted={() => void load()} />}

      <div className="card">
        <div className="card-header wrap">
          <h2>Spend per day</h2>
          <DateRangePicker value={range} onChange={(next) => setParams(`customers/${encodeURIComponent(id)}`, { ...next })} label="Range for the chart and the requests" />
        </div>
        {series ? <SpendChart points={series} label={`Spend per day of ${id}, ${rangeName}`} /> : <p className="empty">Loading…</p>}
      </div>

      <div className="card">
        <div className="card-header">
          <h2>Refused requests</h2>
          <span className="muted small">last 30 days, newest first; one row per model, reason and minute</span>
        </div>
        <RefusalTable rows={history?.refusedRequests ?? null} testId="refused-requests" empty="No request of this customer was refused." />
      </div>

      <div className="card">
        <div className="card-header">
          <h2>Requests</h2>
          <span className="muted small">{rangeName}, newest first</span>
        </div>
        <table className="table responsive" data-testid="requests">
          <thead>
            <tr>
              <th>Time</th>
              <th>Model</th>
              <th className="number">Prompt tokens</th>
              <th className="number">Completion tokens</th>
              <th className="number">Cost</th>
              <th>Request ID</th>
            </tr>
          </thead>
          <tbody>
            {logs?.nodes.map((row) => (
              <tr key={row.requestId} data-request={row.requestId}>
                <td data-label="Time">{dateTime(row.createdAt)}</td>
                <td data-label="Model" className="mono">{row.model}</td>
                <td data-label="Prompt tokens" className="number">{count(row.promptTokens)}</td>
                <td data-label="Completion tokens" className="number">{count(row.completionTokens)}</td>
                <td data-label="Cost" className="number money">{usd(row.cost)}</td>
                <td data-label="Request ID" className="mono muted small">{row.requestId}</td>
              </tr>
            ))}
            {logs && logs.nodes.length === 0 && (
              <tr>
                <td colSpan={6} className="empty">No requests in this range.</td>
              </tr>
            )}
          </tbody>
        </table>
        {logs?.pageInfo.hasNextPage && (
          <div className="pager">
            <span />
            <button type="button" className="button small" onClick={() => void loadMore()}>
              Load more
            </button>
          </div>
        )}
      </div>

      <div className="columns">
        <div className="card">
          <div className="card-header">
            <h2>Past periods</h2>
          </div>
          <table className="table responsive" data-testid="periods">
            <thead>
              <tr>
                <th>Period from</th>
                <th className="number">Spend</th>
                <th className="number">Requests</th>
              </tr>
            </thead>
            <tbody>
              {history?.spendPeriods.map((row) => (
                <tr key={row.periodStart}>
                  <td data-label="Period from">{new Date(row.periodStart).getTime() === 0 ? 'Lifetime (no period)' : dateTime(row.periodStart)}</td>
                  <td data-label="Spend" className="number money">{usd(row.spend)}</td>
                  <td data-label="Requests" className="number">{count(row.requests)}</td>
                </tr>
              ))}
              {history && !history.spendPeriods.length && (
                <tr>
                  <td colSpan={3} className="empty">No spend yet.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <div className="card">
          <div className="card-header">
            <h2>Budget alerts</h2>
          </div>
          <ul className="timeline" data-testid="alert-history">
            {history?.budgetAlerts.map((alert) => (
              <li key={alert.id} data-alert={alert.type}>
                <time dateTime={alert.at}>{dateTime(alert.at)}</time>
                <span>{alertText(alert)}</span>
              </li>
            ))}
            {history && !history.budgetAlerts.length && <li className="muted">No budget alert yet.</li>}
          </ul>
        </div>
      </div>

      <div className="card">
        <div className="card-header">
          <h2>Changes</h2>
          <span className="muted small">who changed this customer, newest first</span>
        </div>
        <ul className="timeline" data-testid="audit-trail">
          {history?.customerAudit.map((entry) => (
            <li key={entry.id} data-action={entry.action}>
              <time dateTime={entry.at}>{dateTime(entry.at)}</time>
              <span>
                <strong>{entry.action}</strong> by {entry.actor}
                {Object.keys(entry.changes).length > 0 && ': '}
                {Object.entries(entry.changes)
                  .map(([field, change]) => describeChange(field, change))
                  .join('; ')}
              </span>
            </li>
          ))}
          {history && !history.customerAudit.length && <li className="muted">No change recorded (customers created by their first request have none until edited).</li>}
        </ul>
      </div>

      {editing && customer && (
        <CustomerEditDialog
          customer={customer}
          onClose={() => setEditing(false)}
          onSaved={(saved) => {
            setEditing(false);
            setCustomer(saved);
            setFlash(`Saved customer ${saved.id}.`);
            void load();
          }}
        />
      )}
    </section>
  );
}
