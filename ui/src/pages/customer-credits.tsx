/**
 * A customer's prepaid credits on its page: the balance (refreshed with every metered request
 * of the customer), its grants in the order they are consumed, and a form to grant more.
 */
import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { RequestError } from '../api/graphql';
import { CUSTOMER_CREDITS, GRANT_CREDITS, type CustomerCredits } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { dateTime, humanizeMessage, usd } from '../format';
import { useGraphQL } from '../session';

type Field = 'amount' | 'reference' | 'expiresAt';

function newReference(): string {
  return `grant-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`;
}

/** `refresh` changes with each metered request of the customer: the balance is read again. */
/** Dollars, with the sign before the dollar sign (a balance may end a fraction of a request below zero). */
function signedUsd(value: number): string {
  return value < 0 ? `−${usd(-value)}` : usd(value);
}

export function CreditsCard({ customerId, refresh, onGranted }: { customerId: string; refresh: string | null; onGranted?: () => void }) {
  const graphql = useGraphQL();
  const idPrefix = useId();
  const [credits, setCredits] = useState<CustomerCredits | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [formError, setFormError] = useState<unknown>(null);
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<Field, string>>>({});
  const [amount, setAmount] = useState('');
  const [reference, setReference] = useState(newReference);
  const [kind, setKind] = useState('paid');
  const [expiresAt, setExpiresAt] = useState('');
  const [busy, setBusy] = useState(false);
  const [flash, setFlash] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const data = await graphql<{ customerCredits: CustomerCredits }>(CUSTOMER_CREDITS, { customerId });
      setCredits(data.customerCredits);
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [graphql, customerId]);
  useEffect(() => void load(), [load, refresh]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const errors: Partial<Record<Field, string>> = {};
    const text = amount.trim().replace(/^\$/, '');
    if (!/^(\d+\.?\d*|\.\d+)$/.test(text) || Number(text) <= 0) errors.amount = 'Amount must be a number of dollars above zero, like 10 or 2.50.';
    if (!reference.trim()) errors.reference = 'A reference is required (your invoice or payment id): the same reference grants once.';
    const expiry = expiresAt ? new Date(expiresAt) : null;
    if (expiry && (Number.isNaN(expiry.getTime()) || expiry.getTime() <= Date.now())) errors.expiresAt = 'The expiry must be a date in the future.';
    setFieldErrors(errors);
    if (Object.keys(errors).length) {
      setFormError(new Error('Some fields need a fix before credits can be granted.'));
      return;
    }
    setBusy(true);
    setFormError(null);
    try {
      const data = await graphql<{ grantCredits: { created: boolean; credits: CustomerCredits } }>(GRANT_CREDITS, {
        customerId,
        amount: Number(text),
        reference: reference.trim(),
        kind,
        expiresAt: expiry ? expiry.toISOString() : null,
      });
      setCredits(data.grantCredits.credits);
      onGranted?.(); // the page's audit trail shows the grant
      setFlash(data.grantCredits.created ? `Granted ${usd(Number(text))} (${reference.trim()}).` : `Reference ${reference.trim()} had granted already: nothing new was granted.`);
      setAmount('');
      setReference(newReference());
      setExpiresAt('');
    } catch (caught) {
      setFormError(caught);
      const field = caught instanceof RequestError ? caught.field : null;
      if (field === 'amount' || field === 'reference' || field === 'expiresAt') setFieldErrors({ [field]: humanizeMessage((caught as Error).message) });
    } finally {
      setBusy(false);
    }
  };

  const fieldProps = (name: Field) => {
    const invalid = fieldErrors[name];
    return { 'aria-invalid': invalid ? true : undefined, 'aria-describedby': invalid ? `${idPrefix}-${name}-error` : undefined };
  };
  const fieldError = (name: Field) =>
    fieldErrors[name] && (
      <small className="field-error" id={`${idPrefix}-${name}-error`}>
        {fieldErrors[name]}
      </small>
    );

  return (
    <div className="card" data-testid="credits">
      <div className="card-header wrap">
        <h2>Prepaid credits</h2>
        <span className="muted small">{credits ? (credits.prepaid ? 'Prepaid: requests are refused (402 credits_exhausted) once the balance is used up' : 'Not prepaid: credits are kept but requests are not held to them') : ' '}</span>
      </div>
      <ErrorNotice error={error} title="Could not load the credits." />
      {credits && (
        <div className="credit-figures">
          <div>
            <span className="muted small">Balance</span>
            <div className={`stat-value money ${credits.balance <= 0 ? 'negative' : ''}`} data-testid="credit-balance">
              {signedUsd(credits.balance)}
            </div>
          </div>
          <div>
            <span className="muted small">Granted</span>
            <div className="money" data-testid="credit-granted">{usd(credits.granted)}</div>
          </div>
          <div>
            <span className="muted small">Consumed</span>
            <div className="money" data-testid="credit-consumed">{usd(credits.consumed)}</div>
          </div>
        </div>
      )}
      {credits?.prepaid && credits.balance <= 0 && (
        <div className="notice error" role="status" data-testid="credits-exhausted">
          Credits exhausted: this customer's requests are refused until credits are granted.
        </div>
      )}
      <table className="table responsive" data-testid="grants">
        <thead>
          <tr>
            <th>Reference</th>
            <th>Kind</th>
            <th className="number">Amount</th>
            <th className="number">Consumed</th>
            <th className="number">Remaining</th>
            <th>Expires</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {credits?.grants.map((grant) => (
            <tr key={grant.reference} data-grant={grant.reference}>
              <td data-label="Reference" className="mono">{grant.reference}</td>
              <td data-label="Kind">{grant.kind}</td>
              <td data-label="Amount" className="number money">{usd(grant.amount)}</td>
              <td data-label="Consumed" className="number money">{usd(grant.consumed)}</td>
              <td data-label="Remaining" className="number money">{usd(grant.remaining)}</td>
              <td data-label="Expires">{grant.expiresAt ? dateTime(grant.expiresAt) : 'never'}</td>
              <td data-label="Status">{grant.status}</td>
            </tr>
          ))}
          {credits && !credits.grants.length && (
            <tr>
              <td colSpan={7} className="empty">No credits granted yet.</td>
            </tr>
          )}
        </tbody>
      </table>
      <form onSubmit={submit} noValidate className="grant-form" aria-label="Grant credits">
        <ErrorNotice error={formError} title="Could not grant credits." />
        {flash && (
          <div className="notice success" role="status">
            {flash}
          </div>
        )}
        <div className="form-grid">
          <label className={`field ${fieldErrors.amount ? 'invalid' : ''}`}>
            <span>Amount (USD)</span>
            <input name="amount" inputMode="decimal" placeholder="e.g. 10" value={amount} onChange={(event) => setAmount(event.target.value)} {...fieldProps('amount')} />
            {fieldError('amount')}
          </label>
          <label className={`field ${fieldErrors.reference ? 'invalid' : ''}`}>
            <span>Reference</span>
            <input name="reference" value={reference} onChange={(event) => setReference(event.target.value)} {...fieldProps('reference')} />
            {fieldError('reference')}
          </label>
          <label className="field">
            <span>Kind</span>
            <select name="kind" value={kind} onChange={(event) => setKind(event.target.value)}>
              <option value="paid">paid</option>
              <option value="promotional">promotional</option>
            </select>
          </label>
          <label className={`field ${fieldErrors.expiresAt ? 'invalid' : ''}`}>
            <span>Expires (optional)</span>
            <input name="expiresAt" type="datetime-local" value={expiresAt} onChange={(event) => setExpiresAt(event.target.value)} {...fieldProps('expiresAt')} />
            {fieldError('expiresAt')}
          </label>
        </div>
        <div className="dialog-actions">
          <button type="submit" className="button primary" disabled={busy}>
            Grant credits
          </button>
        </div>
      </form>
    </div>
  );
}
