/** The Budgets tab: every budget (pricing tiers and private budgets), create, edit, delete. */
import { useCallback, useEffect, useState } from 'react';
import { BUDGETS, CREATE_BUDGET, DELETE_BUDGET, UPDATE_BUDGET, type Budget, type BudgetLimits } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { Modal } from '../components/modal';
import { count, dateTime, usd } from '../format';
import { useGraphQL } from '../session';
import { BudgetForm } from './budget-form';

type Dialog = { kind: 'create' } | { kind: 'edit'; budget: Budget } | { kind: 'delete'; budget: Budget } | null;

export function BudgetsPage() {
  const graphql = useGraphQL();
  const [budgets, setBudgets] = useState<Budget[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [flash, setFlash] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const data = await graphql<{ budgets: Budget[] }>(BUDGETS);
      setBudgets([...data.budgets].sort((a, b) => a.id.localeCompare(b.id)));
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [graphql]);
  useEffect(() => void load(), [load]);

  const close = useCallback(() => setDialog(null), []);
  // The confirmation shows once the table reflects the change, never beside a stale row.
  const saved = async (message: string) => {
    setDialog(null);
    await load();
    setFlash(message);
  };

  const create = async (id: string | null, limits: BudgetLimits) => {
    const data = await graphql<{ createBudget: Budget }>(CREATE_BUDGET, { input: { id, ...limits } });
    await saved(`Created budget ${data.createBudget.id}.`);
  };
  const update = (id: string) => async (_: string | null, limits: BudgetLimits) => {
    await graphql(UPDATE_BUDGET, { id, input: limits });
    await saved(`Saved budget ${id}.`);
  };

  return (
    <section>
      <div className="page-header">
        <div>
          <h1>Budgets</h1>
          <p className="muted">Limits shared by the customers linked to them (pricing tiers) or private to one customer. Customers without a budget get the default budget, if one is configured.</p>
        </div>
        <button
          type="button"
          className="button primary"
          onClick={() => {
            setFlash(null);
            setDialog({ kind: 'create' });
          }}
        >
          + Create Budget
        </button>
      </div>
      {flash && (
        <div className="notice success" role="status">
          {flash}
        </div>
      )}
      <ErrorNotice error={error} title="Could not load budgets." />
      <div className="card">
        <table className="table responsive budgets">
          <thead>
            <tr>
              <th>Budget ID</th>
              <th className="number">Max budget</th>
              <th className="number">Soft budget</th>
              <th className="number">RPM</th>
              <th className="number">TPM</th>
              <th className="number">Parallel</th>
              <th>Duration</th>
              <th>Resets</th>
              <th className="number">Customers</th>
              <th>
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {budgets?.map((budget) => (
              <tr key={budget.id} data-budget={budget.id}>
                <td data-label="Budget ID" className="strong mono">
                  {budget.id} {budget.isDefault && <span className="pill default" title="litellm_settings.max_end_user_budget_id: applies to every customer without a budget of its own">Default</span>}
                </td>
                <td data-label="Max budget" className="number">{usd(budget.maxBudget)}</td>
                <td data-label="Soft budget" className="number">{usd(budget.softBudget)}</td>
                <td data-label="RPM" className="number">{count(budget.rpmLimit)}</td>
                <td data-label="TPM" className="number">{count(budget.tpmLimit)}</td>
                <td data-label="Parallel" className="number">{count(budget.maxParallelRequests)}</td>
                <td data-label="Duration">{budget.budgetDuration ?? '—'}</td>
                <td data-label="Resets">{dateTime(budget.resetAt)}</td>
                <td data-label="Customers" className="number">
                  <a href={`#/customers?tier=${encodeURIComponent(budget.id)}`} data-testid="customer-count" aria-label={`${budget.customerCount} customers under ${budget.id}`}>
                    {count(budget.customerCount)}
                  </a>
                </td>
                <td className="actions">
                  <button type="button" className="button small" aria-label={`Edit ${budget.id}`} onClick={() => setDialog({ kind: 'edit', budget })}>
                    Edit
                  </button>
                  <button type="button" className="button small danger-text" aria-label={`Delete ${budget.id}`} onClick={() => setDialog({ kind: 'delete', budget })}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            {budgets && budgets.length === 0 && (
              <tr>
                <td colSpan={10} className="empty">
                  No budgets yet. Create a pricing tier with “+ Create Budget”.
                </td>
              </tr>
            )}
            {!budgets && !error && (
              <tr>
                <td colSpan={10} className="empty">
                  Loading…
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>

      {dialog?.kind === 'create' && (
        <Modal title="Create budget" onClose={close}>
          <BudgetForm budget={null} onSubmit={create} onCancel={close} />
        </Modal>
      )}
      {dialog?.kind === 'edit' && (
        <Modal title={`Edit budget ${dialog.budget.id}`} onClose={close}>
          <BudgetForm budget={dialog.budget} onSubmit={update(dialog.budget.id)} onCancel={close} />
        </Modal>
      )}
      {dialog?.kind === 'delete' && (
        <Modal title={`Delete budget ${dialog.budget.id}`} onClose={close}>
          <DeleteBudget
            budget={dialog.budget}
            others={(budgets ?? []).filter((b) => b.id !== dialog.budget.id)}
            onCancel={close}
            onDelete={async (moveTo) => {
              await graphql(DELETE_BUDGET, { id: dialog.budget.id, moveTo });
              await saved(moveTo ? `Moved ${dialog.budget.customerCount} customer(s) to ${moveTo} and deleted budget ${dialog.budget.id}.` : `Deleted budget ${dialog.budget.id}.`);
            }}
          />
        </Modal>
      )}
    </section>
  );
}

/**
 * Deleting: the default budget cannot be (every customer without a budget, and walk-ins,
 * would be uncapped): the dialog says so. A budget in use can be, once its customers move to
 * another budget the operator picks. The gateway enforces both (409); its word is shown too.
 */
function DeleteBudget({ budget, others, onDelete, onCancel }: { budget: Budget; others: Budget[]; onDelete: (moveTo: string | null) => Promise<void>; onCancel: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [target, setTarget] = useState(others.find((b) => b.isDefault)?.id ?? others[0]?.id ?? '');
  const inUse = budget.customerCount > 0;
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await onDelete(inUse ? target || null : null);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  if (budget.isDefault) {
    return (
      <div>
        <div className="notice warning" role="alert" data-testid="default-budget-refusal">
          <strong>The default budget cannot be deleted.</strong> It is the one <code>litellm_settings.max_end_user_budget_id</code> names: it caps the{' '}
          {budget.customerCount} customer(s) without a budget of their own and every new customer. Deleting it would leave all of them uncapped. Point that setting at another budget in config.yaml first.
        </div>
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onCancel}>
            Close
          </button>
        </div>
      </div>
    );
  }
  return (
    <div>
      <ErrorNotice error={error} title="Could not delete the budget." />
      {inUse ? (
        <>
          <p>
            {budget.customerCount} customer(s) are on this budget. Move them to another budget, then delete it.
          </p>
          {others.length ? (
            <label className="field">
              <span>Move its customers to</span>
              <select value={target} onChange={(event) => setTarget(event.target.value)}>
                {others.map((b) => (
                  <option key={b.id} value={b.id}>
                    {b.id}
                    {b.isDefault ? ' (default)' : ''}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <p className="muted">There is no other budget to move them to: create one first.</p>
          )}
        </>
      ) : (
        <p>No customer is on this budget. Deleting it cannot be undone.</p>
      )}
      <div className="dialog-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="button danger" disabled={busy || (inUse && !target)} onClick={() => void run()}>
          {inUse ? `Move ${budget.customerCount} and delete` : 'Delete budget'}
        </button>
      </div>
    </div>
  );
}
