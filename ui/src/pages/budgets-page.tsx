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
        <table className="table">
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
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {budgets?.map((budget) => (
              <tr key={budget.id} data-budget={budget.id}>
                <td className="strong mono">{budget.id}</td>
                <td className="number">{usd(budget.maxBudget)}</td>
                <td className="number">{usd(budget.softBudget)}</td>
                <td className="number">{count(budget.rpmLimit)}</td>
                <td className="number">{count(budget.tpmLimit)}</td>
                <td className="number">{count(budget.maxParallelRequests)}</td>
                <td>{budget.budgetDuration ?? '—'}</td>
                <td>{dateTime(budget.resetAt)}</td>
                <td className="number">{count(budget.customerCount)}</td>
                <td className="actions">
                  <button type="button" className="button small" onClick={() => setDialog({ kind: 'edit', budget })}>
                    Edit
                  </button>
                  <button type="button" className="button small danger-text" onClick={() => setDialog({ kind: 'delete', budget })}>
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
            onCancel={close}
            onDelete={async (detach) => {
              await graphql(DELETE_BUDGET, { id: dialog.budget.id, detach });
              await saved(`Deleted budget ${dialog.budget.id}.`);
            }}
          />
        </Modal>
      )}
    </section>
  );
}

function DeleteBudget({ budget, onDelete, onCancel }: { budget: Budget; onDelete: (detach: boolean) => Promise<void>; onCancel: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const inUse = budget.customerCount > 0;
  const run = async (detach: boolean) => {
    setBusy(true);
    setError(null);
    try {
      await onDelete(detach);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div>
      <ErrorNotice error={error} title="Could not delete the budget." />
      <p>
        {inUse
          ? `${budget.customerCount} customer(s) use this budget. Deleting it unlinks them; the default budget then applies to them.`
          : 'No customer uses this budget.'}
      </p>
      <div className="dialog-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="button danger" disabled={busy} onClick={() => void run(inUse)}>
          {inUse ? 'Unlink customers and delete' : 'Delete budget'}
        </button>
      </div>
    </div>
  );
}
