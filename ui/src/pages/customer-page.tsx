/** One customer: live spend against its budget, spend per day (chart), its requests, block/unblock. */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { BLOCK, BUDGET_EVENT, CUSTOMER, SPEND_BY_DAY, SPEND_BY_MODEL, SPEND_LOGS, UNBLOCK, type BudgetAlert, type Customer, type ReportRow, type SpendLog, type SpendUpdate } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { SpendChart, type DayPoint } from '../components/spend-chart';
import { SpendMeter } from '../components/spend-meter';
import { StatusPill } from '../components/status-pill';
import { count, dateTime, dayKey, usd } from '../format';
import { useGraphQL, useLiveSubscription, useSpendUpdates } from '../session';
import { TierLabel } from './customers-page';

const CHART_DAYS = 30;
const LOG_PAGE = 20;

/** The last 30 days in this browser's time zone, as [from, to) and their day keys. */
function chartWindow(): { from: Date; to: Date; keys: string[] } {
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const from = new Date(today);
  from.setDate(from.getDate() - (CHART_DAYS - 1));
  const to = new Date(today);
  to.setDate(to.getDate() + 1);
  const keys = Array.from({ length: CHART_DAYS }, (_, i) => {
    const day = new Date(from);
    day.setDate(day.getDate() + i);
    return dayKey(day);
  });
  return { from, to, keys };
}

function alertText(alert: BudgetAlert): string {
  const spend = `spend ${usd(alert.spend)}`;
  if (alert.type === 'soft_budget_crossed') return `Soft budget of ${usd(alert.softBudget)} crossed (${spend}).`;
  if (alert.type === 'budget_crossed') return `Max budget of ${usd(alert.maxBudget)} reached (${spend}): further requests are refused until the period resets.`;
  return `${Math.round((alert.threshold ?? 0) * 100)} % of the max budget of ${usd(alert.maxBudget)} used (${spend}).`;
}

interface Logs {
  nodes: SpendLog[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export function CustomerPage({ id }: { id: string }) {
  const graphql = useGraphQL();
  const [customer, setCustomer] = useState<Customer | null | undefined>(undefined);
  const [days, setDays] = useState<Map<string, DayPoint>>(new Map());
  const [models, setModels] = useState<ReportRow[]>([]);
  const [logs, setLogs] = useState<Logs | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [lastUpdate, setLastUpdate] = useState<string | null>(null);
  const [alert, setAlert] = useState<BudgetAlert | null>(null);
  const chart = useMemo(chartWindow, []);

  const load = useCallback(async () => {
    try {
      const range = { from: chart.from.toISOString(), to: chart.to.toISOString(), customerId: id };
      const [found, byDay, byModel, spendLogs] = await Promise.all([
        graphql<{ customer: Customer | null }>(CUSTOMER, { id }),
        graphql<{ spendReport: ReportRow[] }>(SPEND_BY_DAY, range),
        graphql<{ spendReport: ReportRow[] }>(SPEND_BY_MODEL, range),
        graphql<{ spendLogs: Logs }>(SPEND_LOGS, { customerId: id, first: LOG_PAGE }),
      ]);
      setCustomer(found.customer);
      setDays(new Map(byDay.spendReport.map((row) => [row.key, { key: row.key, spend: row.spend, requests: row.requests }])));
      setModels(byModel.spendReport);
      setLogs(spendLogs.spendLogs);
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [graphql, id, chart]);
  useEffect(() => void load(), [load]);

  useSpendUpdates(
    id,
    (update: SpendUpdate) => {
      setCustomer((current) => current && { ...current, spend: update.spend });
      setLastUpdate(update.requestId);
      const day = dayKey(new Date(update.at));
      setDays((current) => {
        const next = new Map(current);
        const point = next.get(day) ?? { key: day, spend: 0, requests: 0 };
        next.set(day, { key: day, spend: point.spend + update.cost, requests: point.requests + 1 });
        return next;
      });
      setModels((current) => {
        const found = current.some((row) => row.key === update.model);
        const next = found
          ? current.map((row) => (row.key === update.model ? { ...row, spend: row.spend + update.cost, requests: row.requests + 1 } : row))
          : [...current, { key: update.model, spend: update.cost, requests: 1 }];
        return next.sort((a, b) => b.spend - a.spend);
      });
      setLogs((current) => {
        if (!current || current.nodes.some((row) => row.requestId === update.requestId)) return current;
        const row: SpendLog = {
          requestId: update.requestId,
          model: update.model,
          promptTokens: update.promptTokens,
          completionTokens: update.completionTokens,
          cost: update.cost,
          costSource: '',
          status: 'success',
          createdAt: update.at,
        };
        return { ...current, nodes: [row, ...current.nodes] };
      });
    },
    () => void load(),
  );

  useLiveSubscription<BudgetAlert>(BUDGET_EVENT, { customerId: id }, setAlert, () => undefined);

  const loadMore = async () => {
    if (!logs?.pageInfo.endCursor) return;
    try {
      const more = await graphql<{ spendLogs: Logs }>(SPEND_LOGS, { customerId: id, first: LOG_PAGE, after: logs.pageInfo.endCursor });
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
      const changed = (data.blockCustomers ?? data.unblockCustomers)![0]!;
      setCustomer(changed);
    } catch (caught) {
      setActionError(caught);
    } finally {
      setBusy(false);
    }
  };

  const points = chart.keys.map((key) => days.get(key) ?? { key, spend: 0, requests: 0 });
  // A day the server counts in its own time zone but this browser does not: keep it visible.
  for (const [key, point] of days) if (!chart.keys.includes(key) && key > chart.keys[0]!) points.push(point);
  const total = points.reduce((sum, point) => sum + point.spend, 0);
  const requests = points.reduce((sum, point) => sum + point.requests, 0);
  const today = chart.keys[chart.keys.length - 1]!;

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
  return (
    <section>
      <a href="#/customers" className="back">
        ← Customers
      </a>
      <div className="page-header">
        <div>
          <h1>
            <span className="mono">{id}</span> {customer && <StatusPill blocked={customer.blocked} />}
          </h1>
          <p className="muted">{customer?.alias ?? 'No alias'}</p>
        </div>
        {customer && (
          <button type="button" className={customer.blocked ? 'button primary' : 'button danger'} disabled={busy} onClick={() => void setBlocked(!customer.blocked)}>
            {customer.blocked ? 'Unblock customer' : 'Block customer'}
          </button>
        )}
      </div>
      <ErrorNotice error={error} title="Could not load this customer." />
      <ErrorNotice error={actionError} />
      {alert && (
        <div className="notice warning" role="status" data-testid="budget-alert">
          <strong>Budget alert, {dateTime(alert.at)}: </strong>
          {alertText(alert)}
        </div>
      )}
      {customer?.blocked && (
        <div className="notice warning" role="status">
          This customer is blocked: its requests are refused with 403 customer_blocked until it is unblocked.
        </div>
      )}

      <div className="stats">
        <div className="card stat">
          <h3>Spend this period</h3>
          {customer ? <SpendMeter spend={customer.spend} maxBudget={budget?.maxBudget} large /> : <span className="muted">…</span>}
          <p className="muted small" data-testid="last-update">
            {lastUpdate ? `Updated live by request ${lastUpdate.slice(0, 8)}…` : budget?.resetAt ? `Resets ${dateTime(budget.resetAt)}` : 'No reset date'}
          </p>
        </div>
        <div className="card stat">
          <h3>Budget in force</h3>
          <div className="stat-value">{customer ? <TierLabel customer={customer} /> : '…'}</div>
          {budget ? (
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
          ) : (
            <p className="muted small">No budget: spend is tracked but not capped.</p>
          )}
        </div>
        <div className="card stat">
          <h3>Last {CHART_DAYS} days</h3>
          <div className="stat-value money">{usd(total)}</div>
          <p className="muted small">{count(requests)} requests</p>
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

      <div className="card">
        <div className="card-header">
          <h2>Spend per day</h2>
          <span className="muted small">last {CHART_DAYS} days, live</span>
        </div>
        <SpendChart days={points} today={today} />
      </div>

      <div className="card">
        <div className="card-header">
          <h2>Requests</h2>
          <span className="muted small">newest first</span>
        </div>
        <table className="table" data-testid="requests">
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
                <td>{dateTime(row.createdAt)}</td>
                <td className="mono">{row.model}</td>
                <td className="number">{count(row.promptTokens)}</td>
                <td className="number">{count(row.completionTokens)}</td>
                <td className="number money">{usd(row.cost)}</td>
                <td className="mono muted small">{row.requestId}</td>
              </tr>
            ))}
            {logs && logs.nodes.length === 0 && (
              <tr>
                <td colSpan={6} className="empty">
                  No requests yet.
                </td>
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
    </section>
  );
}
