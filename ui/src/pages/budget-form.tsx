/**
 * Create or edit a budget. The form checks only the shape of what was typed (a number, a whole
 * number); the gateway judges the values and its refusal is shown next to the field it names.
 */
import { useId, useState, type FormEvent } from 'react';
import { RequestError } from '../api/graphql';
import type { Budget, BudgetLimits } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { humanizeMessage } from '../format';

type FieldName = 'id' | keyof BudgetLimits;

interface FieldSpec {
  name: FieldName;
  label: string;
  kind: 'text' | 'dollars' | 'count';
  placeholder: string;
  hint?: string;
}

const FIELDS: FieldSpec[] = [
  { name: 'id', label: 'Budget ID', kind: 'text', placeholder: 'e.g. my-free-tier', hint: 'Leave empty to generate one.' },
  { name: 'maxBudget', label: 'Max budget (USD)', kind: 'dollars', placeholder: 'e.g. 4', hint: 'Requests are refused once period spend reaches it.' },
  { name: 'softBudget', label: 'Soft budget (USD)', kind: 'dollars', placeholder: 'e.g. 3', hint: 'Alert only.' },
  { name: 'rpmLimit', label: 'Requests per minute', kind: 'count', placeholder: 'no limit' },
  { name: 'tpmLimit', label: 'Tokens per minute', kind: 'count', placeholder: 'no limit' },
  { name: 'maxParallelRequests', label: 'Parallel requests', kind: 'count', placeholder: 'no limit' },
  { name: 'budgetDuration', label: 'Budget duration', kind: 'text', placeholder: 'e.g. 30d', hint: 'When spend resets: Ns, Nm, Nh, Nd, Nw or Nmo. Empty: never.' },
];

type Values = Record<FieldName, string>;

function initialValues(budget: Budget | null): Values {
  const text = (value: number | string | null | undefined) => (value === null || value === undefined ? '' : String(value));
  return {
    id: budget?.id ?? '',
    maxBudget: text(budget?.maxBudget),
    softBudget: text(budget?.softBudget),
    rpmLimit: text(budget?.rpmLimit),
    tpmLimit: text(budget?.tpmLimit),
    maxParallelRequests: text(budget?.maxParallelRequests),
    budgetDuration: text(budget?.budgetDuration),
  };
}

/** The typed values as GraphQL input, or the fields whose text is not of the right shape. */
function toLimits(values: Values): { limits: BudgetLimits; errors: Partial<Record<FieldName, string>> } {
  const errors: Partial<Record<FieldName, string>> = {};
  const dollars = (name: 'maxBudget' | 'softBudget', label: string): number | null => {
    const text = values[name].trim().replace(/^\$/, '');
    if (!text) return null;
    const value = Number(text);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) || !Number.isFinite(value)) {
      errors[name] = `${label} must be an amount in dollars, like 4 or 0.50.`;
      return null;
    }
    return value;
  };
  const whole = (name: 'rpmLimit' | 'tpmLimit' | 'maxParallelRequests', label: string): number | null => {
    const text = values[name].trim().replace(/,/g, '');
    if (!text) return null;
    if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      errors[name] = `${label} must be a whole number, like 60.`;
      return null;
    }
    return Number(text);
  };
  const limits: BudgetLimits = {
    maxBudget: dollars('maxBudget', 'Max budget'),
    softBudget: dollars('softBudget', 'Soft budget'),
    rpmLimit: whole('rpmLimit', 'Requests per minute'),
    tpmLimit: whole('tpmLimit', 'Tokens per minute'),
    maxParallelRequests: whole('maxParallelRequests', 'Parallel requests'),
    budgetDuration: values.budgetDuration.trim() || null,
  };
  // The gateway refuses it too; saying so here saves a round trip.
  if (!errors.softBudget && !errors.maxBudget && limits.softBudget !== null && limits.maxBudget !== null && limits.softBudget > limits.maxBudget) {
    errors.softBudget = 'Soft budget must not be above the max budget: it alerts before the cap refuses.';
  }
  return { limits, errors };
}

export function BudgetForm({
  budget,
  onSubmit,
  onCancel,
}: {
  /** null: create a new budget. */
  budget: Budget | null;
  onSubmit: (id: string | null, limits: BudgetLimits) => Promise<void>;
  onCancel: () => void;
}) {
  const [values, setValues] = useState<Values>(() => initialValues(budget));
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<FieldName, string>>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const idPrefix = useId();

  // Editing a field clears what was said about it; the summary goes once no field is flagged.
  const edit = (name: FieldName, value: string) => {
    setValues({ ...values, [name]: value });
    if (!fieldErrors[name]) return;
    const remaining = { ...fieldErrors };
    delete remaining[name];
    setFieldErrors(remaining);
    if (!Object.keys(remaining).length) setError(null);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { limits, errors } = toLimits(values);
    setFieldErrors(errors);
    if (Object.keys(errors).length) {
      setError(new Error('Some fields need a fix before the budget can be saved.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSubmit(budget ? budget.id : values.id.trim() || null, limits);
    } catch (caught) {
      setError(caught);
      // The gateway names the field it refused (maxBudget, budgetDuration, or "budget_id"/"id" for the id).
      const field = caught instanceof RequestError ? caught.field : null;
      const name = field === 'budget_id' || field === 'id' ? 'id' : FIELDS.find((spec) => spec.name === field)?.name;
      if (name) setFieldErrors({ [name]: humanizeMessage(caught instanceof Error ? caught.message : String(caught)) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} noValidate className="budget-form">
      <ErrorNotice error={error} title={budget ? 'Could not save the budget.' : 'Could not create the budget.'} />
      <div className="form-grid">
        {FIELDS.map((spec) => {
          const invalid = fieldErrors[spec.name];
          const noteId = `${idPrefix}-${spec.name}-note`;
          return (
            <label key={spec.name} className={`field ${spec.name === 'id' || spec.name === 'budgetDuration' ? 'span-2' : ''} ${invalid ? 'invalid' : ''}`}>
              <span>{spec.label}</span>
              <input
                name={spec.name}
                type="text"
                inputMode={spec.kind === 'dollars' ? 'decimal' : spec.kind === 'count' ? 'numeric' : 'text'}
                placeholder={spec.placeholder}
                value={values[spec.name]}
                disabled={spec.name === 'id' && budget !== null}
                aria-invalid={invalid ? true : undefined}
                aria-describedby={invalid || spec.hint ? noteId : undefined}
                onChange={(event) => edit(spec.name, event.target.value)}
              />
              {invalid ? (
                <small className="field-error" id={noteId}>
                  {invalid}
                </small>
              ) : spec.hint ? (
                <small className="hint" id={noteId}>
                  {spec.hint}
                </small>
              ) : null}
            </label>
          );
        })}
      </div>
      <div className="dialog-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? 'Saving…' : budget ? 'Save changes' : 'Create budget'}
        </button>
      </div>
    </form>
  );
}
