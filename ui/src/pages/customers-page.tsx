/**
 * The Customers tab: search, filter by tier and status, sort by spend, pages — all in the
 * URL — spend against the budget in force (live), status that tells the truth, bulk block
 * and unblock, and a CSV export of the whole filtered list.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { BLOCK, BUDGETS, CUSTOMERS, UNBLOCK, type Budget, type Customer, type CustomerPage, type SpendUpdate } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { SpendMeter } from '../components/spend-meter';
import { StatusPill } from '../components/status-pill';
import { statusLabel } from '../format';
import { customerHref, setParams } from '../router';
import { useGraphQL, useSpendUpdates } from '../session';

const PAGE_SIZE = 20;
const STATUSES = ['active', 'over_budget', 'rate_limited', 'blocked'] as const;
const SORTS = { id: 'Customer ID', spend_desc: 'Spend, highest first', spend_asc: 'Spend, lowest first' } as const;

export function TierLabel({ customer }: { customer: Customer }) {
  if (customer.budgetId) return <span className="mono">{customer.budgetId}</span>;
  if (customer.budget) return <span className="muted">default · <span className="mono">{customer.budget.id}</span></span>;
  return <span className="muted">none</span>;
}

interface Filters {
  q: string;
  tier: string | null;
  status: string | null;
  sort: keyof typeof SORTS;
  page: number;
}

function filtersFrom(params: URLSearchParams): Filters {
  const sort = params.get('sort');
  const page = Number(params.get('page') ?? '1');
  const status = params.get('status');
  return {
    q: params.get('q') ?? '',
    tier: params.has('tier') ? params.get('tier') : null,
    status: status && (STATUSES as readonly string[]).includes(status) ? status : null,
    sort: sort && sort in SORTS ? (sort as keyof typeof SORTS) : 'id',
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

function go(filters: Filters): void {
  setParams('customers', { q: filters.q || null, tier: filters.tier, status: filters.status, sort: filters.sort === 'id' ? null : filters.sort, page: filters.page > 1 ? filters.page : null });
}

function variables(filters: Filters, first: number, offset: number) {
  return { first, offset, search: filters.q || null, budgetId: filters.tier, status: filters.status, sort: filters.sort };
}

const EXPORT_PAGE = 500;

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(text) || /^[=+\-@]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function CustomersPage({ params }: { params: URLSearchParams }) {
  const graphql = useGraphQL();
  const filters = filtersFrom(params);
  const [searchText, setSearchText] = useState(filters.q);
  const [page, setPage] = useState<CustomerPage | null>(null);
  const [budgets, setBudgets] = useState<Budget[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [flash, setFlash] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [updated, setUpdated] = useState<Record<string, number>>({});
  const filterKey = JSON.stringify(filters);

  // Filters change faster than answers come back (a sort by spend is slower than a tier
  // filter): only the newest load may show its answer, or an older one lands last.
  const loadSeq = useRef(0);
  const load = useCallback(async () => {
    const current = JSON.parse(filterKey) as Filters;
    const seq = ++loadSeq.current;
    try {
      const data = await graphql<{ customers: CustomerPage }>(CUSTOMERS, variables(current, PAGE_SIZE, (current.page - 1) * PAGE_SIZE));
      if (seq !== loadSeq.current) return;
      setPage(data.customers);
      setError(null);
    } catch (caught) {
      if (seq === loadSeq.current) setError(caught);
    }
  }, [graphql, filterKey]);
  useEffect(() => void load(), [load]);
  useEffect(() => {
    graphql<{ budgets: Budget[] }>(BUDGETS).then((data) => setBudgets([...data.budgets].sort((a, b) => a.id.localeCompare(b.id))), () => undefined);
  }, [graphql]);

  // Search as you type, once typing pauses; a new search starts at page 1.
  useEffect(() => {
    const timer = setTimeout(() => {
      if (searchText.trim() !== filters.q) go({ ...filters, q: searchText.trim(), page: 1 });
    }, 250);
    return () => clearTimeout(timer);
  }, [searchText]);

  // At most one refetch per 800 ms however many events arrive (a debounce would starve on a busy gateway).
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const latestLoad = useRef(load);
  latestLoad.current = load;
  const refetchSoon = useCallback(() => {
    if (refetchTimer.current !== undefined) return;
    refetchTimer.current = setTimeout(() => {
      refetchTimer.current = undefined;
      void latestLoad.current();
    }, 800);
  }, []);
  useEffect(() => () => clearTimeout(refetchTimer.current), []);

  const shown = useRef(page);
  shown.current = page;
  useSpendUpdates(
    null,
    (update: SpendUpdate) => {
      const onPage = shown.current?.nodes.find((customer) => customer.id === update.customerId);
      // Not on this page, or its status may change, or the order depends on spend: refetch.
      if (!onPage || filters.sort !== 'id' || (onPage.budget?.maxBudget != null && update.spend >= onPage.budget.maxBudget)) refetchSoon();
      if (!onPage) return;
      setPage((current) => current && { ...current, nodes: current.nodes.map((customer) => (customer.id === update.customerId ? { ...customer, spend: update.spend } : customer)) });
      setUpdated((current) => ({ ...current, [update.customerId]: Date.now() }));
    },
    refetchSoon,
  );

  useEffect(() => {
    if (!Object.keys(updated).length) return;
    const timer = setTimeout(() => setUpdated({}), 1500);
    return () => clearTimeout(timer);
  }, [updated]);

  const setBlocked = async (blocked: boolean) => {
    const ids = [...selected];
    setBusy(true);
    setFlash(null);
    try {
      await graphql(blocked ? BLOCK : UNBLOCK, { ids });
      setSelected(new Set());
      await load();
      setFlash(`${blocked ? 'Blocked' : 'Unblocked'} ${ids.length} customer${ids.length === 1 ? '' : 's'}.`);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const exportCsv = async () => {
    setBusy(true);
    try {
      const rows: Customer[] = [];
      // Pages of 500: a page of 1,000 customers with their budgets is over the GraphQL cost limit.
      for (let offset = 0; ; offset += EXPORT_PAGE) {
        const data = await graphql<{ customers: CustomerPage }>(CUSTOMERS, variables(filters, EXPORT_PAGE, offset));
        rows.push(...data.customers.nodes);
        if (!data.customers.pageInfo.hasNextPage) break;
      }
      const header = ['customer_id', 'alias', 'status', 'budget_in_force', 'own_budget_id', 'spend_this_period_usd', 'max_budget_usd', 'resets_at'];
      const lines = rows.map((c) => [c.id, c.alias, c.status, c.budget?.id, c.budgetId, c.spend, c.budget?.maxBudget, c.budget?.resetAt].map(csvCell).join(','));
      const blob = new Blob([[header.join(','), ...lines].join('\r\n') + '\r\n'], { type: 'text/csv' });
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `tollgate-customers-${new Date().toISOString().slice(0, 10)}.csv`;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const first = (filters.page - 1) * PAGE_SIZE;
  const allOnPage = page?.nodes.length ? page.nodes.every((c) => selected.has(c.id)) : false;
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const filtered = Boolean(filters.q || filters.tier !== null || filters.status);
  return (
    <section>
      <div className="page-header">
        <div>
          <h1>Customers</h1>
          <p className="muted">Everyone your application calls the gateway for (the <code>user</code> field). Spend is for the current budget period and updates live.</p>
        </div>
        <button type="button" className="button" disabled={busy} onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </div>
      <div className="toolbar">
        <input type="search" className="search" placeholder="Search by customer ID or alias" aria-label="Search customers" value={searchText} onChange={(event) => setSearchText(event.target.value)} />
        <label className="inline-field">
          <span>Tier</span>
          <select value={filters.tier ?? '*'} onChange={(event) => go({ ...filters, tier: event.target.value === '*' ? null : event.target.value, page: 1 })}>
            <option value="*">All tiers</option>
            {budgets.map((budget) => (
              <option key={budget.id} value={budget.id}>
                {budget.id}
                {budget.isDefault ? ' (default)' : ''}
              </option>
            ))}
            <option value="">No budget</option>
          </select>
        </label>
        <label className="inline-field">
          <span>Status</span>
          <select value={filters.status ?? ''} onChange={(event) => go({ ...filters, status: event.target.value || null, page: 1 })}>
            <option value="">Any status</option>
            {STATUSES.map((status) => (
              <option key={status} value={status}>
                {statusLabel(status)}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field">
          <span>Sort</span>
          <select value={filters.sort} onChange={(event) => go({ ...filters, sort: event.target.value as Filters['sort'], page: 1 })}>
            {Object.entries(SORTS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {page && <span className="muted">{page.totalCount === 1 ? '1 customer' : `${page.totalCount.toLocaleString('en-US')} customers`}</span>}
      </div>
      {selected.size > 0 && (
        <div className="bulk-bar" role="region" aria-label="Selected customers">
          <span>{selected.size} selected</span>
          <button type="button" className="button small danger" disabled={busy} onClick={() => void setBlocked(true)}>
            Block selected
          </button>
          <button type="button" className="button small" disabled={busy} onClick={() => void setBlocked(false)}>
            Unblock selected
          </button>
          <button type="button" className="button small subtle" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        </div>
      )}
      {flash && (
        <div className="notice success" role="status">
          {flash}
        </div>
      )}
      <ErrorNotice error={error} title="Could not load customers." />
      <div className="card">
        <table className="table responsive customers">
          <thead>
            <tr>
              <th className="check">
                <input
                  type="checkbox"
                  aria-label="Select every customer on this page"
                  checked={allOnPage}
                  onChange={() => setSelected(allOnPage ? new Set() : new Set([...selected, ...(page?.nodes.map((c) => c.id) ?? [])]))}
                />
              </th>
              <th>Customer</th>
              <th>Tier / budget</th>
              <th className="spend-column">Spend this period</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {page?.nodes.map((customer) => (
              <tr key={customer.id} data-customer={customer.id} className={updated[customer.id] ? 'updated' : undefined}>
                <td className="check" data-label="Select">
                  <input type="checkbox" aria-label={`Select ${customer.id}`} checked={selected.has(customer.id)} onChange={() => toggle(customer.id)} />
                </td>
                <td data-label="Customer">
                  <a href={customerHref(customer.id)} className="strong mono">
                    {customer.id}
                  </a>
                  {customer.alias && <div className="muted small">{customer.alias}</div>}
                </td>
                <td data-label="Tier">
                  <TierLabel customer={customer} />
                </td>
                <td data-label="Spend" className="spend-column">
                  <SpendMeter spend={customer.spend} maxBudget={customer.budget?.maxBudget} label={`Spend of ${customer.id} this period`} />
                </td>
                <td data-label="Status">
                  <StatusPill status={customer.status} />
                </td>
              </tr>
            ))}
            {page && page.nodes.length === 0 && (
              <tr>
                <td colSpan={5} className="empty">
                  {filters.q ? `No customer matches “${filters.q}”.` : filtered ? 'No customer matches these filters.' : 'No customers yet. They appear with their first request (pass "user" in a chat completion).'}
                </td>
              </tr>
            )}
            {!page && !error && (
              <tr>
                <td colSpan={5} className="empty">
                  Loading…
                </td>
              </tr>
            )}
          </tbody>
        </table>
        {page && page.totalCount > 0 && (
          <div className="pager">
            <span className="muted">
              {first + 1}–{first + page.nodes.length} of {page.totalCount.toLocaleString('en-US')}
            </span>
            <div className="pager-buttons">
              <button type="button" className="button small" disabled={filters.page === 1} onClick={() => go({ ...filters, page: filters.page - 1 })}>
                ← Previous
              </button>
              <button type="button" className="button small" disabled={!page.pageInfo.hasNextPage} onClick={() => go({ ...filters, page: filters.page + 1 })}>
                Next →
              </button>
            </div>
          </div>
        )}
      </div>
    </section>
  );
}
