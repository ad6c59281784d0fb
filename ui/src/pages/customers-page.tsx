/** The Customers tab: search, pages, spend against the budget in force, tier, blocked state, live. */
import { useCallback, useEffect, useRef, useState } from 'react';
import { CUSTOMERS, type Customer, type CustomerPage, type SpendUpdate } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { SpendMeter } from '../components/spend-meter';
import { StatusPill } from '../components/status-pill';
import { customerHref } from '../router';
import { useGraphQL, useSpendUpdates } from '../session';

const PAGE_SIZE = 20;

export function TierLabel({ customer }: { customer: Customer }) {
  if (customer.budgetId) return <span className="mono">{customer.budgetId}</span>;
  if (customer.budget) return <span className="muted">default · <span className="mono">{customer.budget.id}</span></span>;
  return <span className="muted">none</span>;
}

export function CustomersPage() {
  const graphql = useGraphQL();
  const [searchText, setSearchText] = useState('');
  const [search, setSearch] = useState('');
  // The `after` cursor of every page up to the current one; null opens the first page.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<CustomerPage | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [updated, setUpdated] = useState<Record<string, number>>({});
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const after = cursors[cursors.length - 1] ?? null;

  const load = useCallback(async () => {
    try {
      const data = await graphql<{ customers: CustomerPage }>(CUSTOMERS, { first: PAGE_SIZE, after, search: search || null });
      setPage(data.customers);
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [graphql, after, search]);
  useEffect(() => void load(), [load]);

  // Search as you type, once typing pauses.
  useEffect(() => {
    const timer = setTimeout(() => {
      if (searchText.trim() !== search) {
        setSearch(searchText.trim());
        setCursors([null]);
      }
    }, 250);
    return () => clearTimeout(timer);
  }, [searchText, search]);

  // At most one refetch per 800 ms however many events arrive (a debounce would starve on a busy gateway).
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

  // The page as last rendered, to tell whether an update is for a customer shown on it.
  const shown = useRef(page);
  shown.current = page;
  useSpendUpdates(
    null,
    (update: SpendUpdate) => {
      if (!shown.current?.nodes.some((customer) => customer.id === update.customerId)) {
        // A customer not on this page (perhaps a new one): refresh the page and the count.
        refetchSoon();
        return;
      }
      setPage((current) => current && { ...current, nodes: current.nodes.map((customer) => (customer.id === update.customerId ? { ...customer, spend: update.spend } : customer)) });
      setUpdated((current) => ({ ...current, [update.customerId]: Date.now() }));
    },
    refetchSoon,
  );

  // Let the highlight of an updated row fade out.
  useEffect(() => {
    if (!Object.keys(updated).length) return;
    const timer = setTimeout(() => setUpdated({}), 1500);
    return () => clearTimeout(timer);
  }, [updated]);

  const first = (cursors.length - 1) * PAGE_SIZE;
  return (
    <section>
      <div className="page-header">
        <div>
          <h1>Customers</h1>
          <p className="muted">Everyone your application calls the gateway for (the <code>user</code> field). Spend is for the current budget period and updates live.</p>
        </div>
      </div>
      <div className="toolbar">
        <input
          type="search"
          className="search"
          placeholder="Search by customer ID or alias"
          aria-label="Search customers"
          value={searchText}
          onChange={(event) => setSearchText(event.target.value)}
        />
        {page && <span className="muted">{page.totalCount === 1 ? '1 customer' : `${page.totalCount.toLocaleString('en-US')} customers`}</span>}
      </div>
      <ErrorNotice error={error} title="Could not load customers." />
      <div className="card">
        <table className="table">
          <thead>
            <tr>
              <th>Customer</th>
              <th>Tier / budget</th>
              <th className="spend-column">Spend this period</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {page?.nodes.map((customer) => (
              <tr key={customer.id} data-customer={customer.id} className={updated[customer.id] ? 'clickable updated' : 'clickable'} onClick={() => (window.location.hash = customerHref(customer.id))}>
                <td>
                  <a href={customerHref(customer.id)} className="strong mono" onClick={(event) => event.stopPropagation()}>
                    {customer.id}
                  </a>
                  {customer.alias && <div className="muted small">{customer.alias}</div>}
                </td>
                <td>
                  <TierLabel customer={customer} />
                </td>
                <td className="spend-column">
                  <SpendMeter spend={customer.spend} maxBudget={customer.budget?.maxBudget} />
                </td>
                <td>
                  <StatusPill blocked={customer.blocked} />
                </td>
              </tr>
            ))}
            {page && page.nodes.length === 0 && (
              <tr>
                <td colSpan={4} className="empty">
                  {search ? `No customer matches “${search}”.` : 'No customers yet. They appear with their first request (pass "user" in a chat completion).'}
                </td>
              </tr>
            )}
            {!page && !error && (
              <tr>
                <td colSpan={4} className="empty">
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
              <button type="button" className="button small" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                ← Previous
              </button>
              <button
                type="button"
                className="button small"
                disabled={!page.pageInfo.hasNextPage}
                onClick={() => setCursors([...cursors, page.pageInfo.endCursor])}
              >
                Next →
              </button>
            </div>
          </div>
        )}
      </div>
    </section>
  );
}
