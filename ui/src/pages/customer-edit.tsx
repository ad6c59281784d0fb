/** Edit a customer: alias, the tier it is on (or the default budget), or limits of its own. */
import { useEffect, useId, useState, type FormEvent } from 'react';
import { RequestError } from '../api/graphql';
import { BUDGETS, UPDATE_CUSTOMER, type Budget, type Customer } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { Modal } from '../components/modal';
import { humanizeMessage } from '../format';
import { useGraphQL } from '../session';

const OWN = '__own__';
const DEFAULT = '__default__';

type LimitName = 'maxBudget' | 'softBudget' | 'rpmLimit' | 'tpmLimit' | 'budgetDuration';
const LIMITS: { name: LimitName; label: string; kind: 'dollars' | 'count' | 'text'; placeholder: string }[] = [
  { name: 'maxBudget', label: 'Max budget (USD)', kind: 'dollars', placeholder: 'no cap' },
  { name: 'softBudget', label: 'Soft budget (USD)', kind: 'dollars', placeholder: 'no alert' },
  { name: 'rpmLimit', label: 'Requests per minute', kind: 'count', placeholder: 'no limit' },
  { name: 'tpmLimit', label: 'Tokens per minute', kind: 'count', placeholder: 'no limit' },
  { name: 'budgetDuration', label: 'Budget duration', kind: 'text', placeholder: 'e.g. 30d' },
];

export function CustomerEditDialog({ customer, onClose, onSaved }: { customer: Customer; onClose: () => void; onSaved: (customer: Customer) => void }) {
  const graphql = useGraphQL();
  const idPrefix = useId();
  const [budgets, setBudgets] = useState<Budget[] | null>(null);
  const [alias, setAlias] = useState(customer.alias ?? '');
  const privateBudget = customer.budgetId !== null && customer.budget?.customerCount === 1 && !customer.budget.isDefault;
  const [tier, setTier] = useState(customer.budgetId === null ? DEFAULT : privateBudget ? OWN : customer.budgetId);
  const [limits, setLimits] = useState<Record<LimitName, string>>(() => {
    const b = privateBudget ? customer.budget : null;
    const text = (value: number | string | null | undefined) => (value === null || value === undefined ? '' : String(value));
    return { maxBudget: text(b?.maxBudget), softBudget: text(b?.softBudget), rpmLimit: text(b?.rpmLimit), tpmLimit: text(b?.tpmLimit), budgetDuration: text(b?.budgetDuration) };
  });
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<LimitName, string>>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    graphql<{ budgets: Budget[] }>(BUDGETS).then(
      (data) => setBudgets([...data.budgets].sort((a, b) => a.id.localeCompare(b.id))),
      setError,
    );
  }, [graphql]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const errors: Partial<Record<LimitName, string>> = {};
    const values: Record<string, number | string | null> = {};
    if (tier === OWN) {
      for (const spec of LIMITS) {
        const text = limits[spec.name].trim().replace(/^\$/, '');
        if (!text) {
          values[spec.name] = null;
          continue;
        }
        if (spec.kind === 'text') values[spec.name] = text;
        else if (spec.kind === 'dollars' && /^(\d+\.?\d*|\.\d+)$/.test(text)) values[spec.name] = Number(text);
        else if (spec.kind === 'count' && /^\d+$/.test(text)) values[spec.name] = Number(text);
        else errors[spec.name] = spec.kind === 'dollars' ? `${spec.label} must be an amount in dollars, like 4 or 0.50.` : `${spec.label} must be a whole number, like 60.`;
      }
      if (!errors.softBudget && !errors.maxBudget && typeof values.softBudget === 'number' && typeof values.maxBudget === 'number' && values.softBudget > values.maxBudget) {
        errors.softBudget = 'Soft budget must not be above the max budget.';
      }
    }
    setFieldErrors(errors);
    if (Object.keys(errors).length) {
      setError(new Error('Some fields need a fix before the customer can be saved.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const input: Record<string, unknown> = { alias: alias.trim() || null };
      if (tier === OWN) input.budget = values;
      else input.budgetId = tier === DEFAULT ? null : tier;
      const data = await graphql<{ updateCustomer: Customer }>(UPDATE_CUSTOMER, { id: customer.id, input });
      onSaved(data.updateCustomer);
    } catch (caught) {
      setError(caught);
      const field = caught instanceof RequestError ? caught.field : null;
      const name = LIMITS.find((spec) => spec.name === field)?.name;
      if (name) setFieldErrors({ [name]: humanizeMessage((caught as Error).message) });
    } finally {
      setBusy(false);
    }
  };

  const defaultBudget = budgets?.find((b) => b.isDefault);
  return (
    <Modal title={`Edit customer ${customer.id}`} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <ErrorNotice error={error} title="Could not save the customer." />
        <div className="form-grid">
          <label className="field span-2">
            <span>Alias</span>
            <input name="alias" value={alias} onChange={(event) => setAlias(event.target.value)} placeholder="A name you recognise" />
          </label>
          <label className="field span-2">
            <span>Tier</span>
            <select name="tier" value={tier} onChange={(event) => setTier(event.target.value)}>
              <option value={DEFAULT}>{defaultBudget ? `Default budget (${defaultBudget.id})` : 'Default budget (none configured)'}</option>
              {budgets
                ?.filter((b) => !b.isDefault && !(privateBudget && b.id === customer.budgetId))
                .map((b) => (
                  <option key={b.id} value={b.id}>
                    {b.id}
                  </option>
                ))}
              <option value={OWN}>Limits of its own</option>
            </select>
          </label>
          {tier === OWN &&
            LIMITS.map((spec) => {
              const invalid = fieldErrors[spec.name];
              const errorId = `${idPrefix}-${spec.name}-error`;
              return (
                <label key={spec.name} className={`field ${invalid ? 'invalid' : ''}`}>
                  <span>{spec.label}</span>
                  <input
                    name={spec.name}
                    inputMode={spec.kind === 'dollars' ? 'decimal' : spec.kind === 'count' ? 'numeric' : 'text'}
                    placeholder={spec.placeholder}
                    value={limits[spec.name]}
                    aria-invalid={invalid ? true : undefined}
                    aria-describedby={invalid ? errorId : undefined}
                    onChange={(event) => setLimits({ ...limits, [spec.name]: event.target.value })}
                  />
                  {invalid && (
                    <small className="field-error" id={errorId}>
                      {invalid}
                    </small>
                  )}
                </label>
              );
            })}
        </div>
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save customer'}
          </button>
        </div>
      </form>
    </Modal>
  );
}
