/** Sign in with a key: checked against the gateway before it is kept for this tab. */
import { useState, type FormEvent } from 'react';
import { request } from '../api/graphql';
import { CHECK_KEY } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';

export function SignInPage({ notice, onSignedIn }: { notice: string | null; onSignedIn: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError(new Error('Enter the master key or an admin key.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await request(trimmed, CHECK_KEY);
      onSignedIn(trimmed);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="sign-in">
      <form className="card sign-in-card" onSubmit={submit} noValidate>
        <div className="brand large">
          <span className="brand-mark" aria-hidden="true">T</span> Tollgate
        </div>
        <p className="muted">Sign in with the master key or an admin-scoped key to manage customers and budgets.</p>
        {notice && !error && <div className="notice info" role="status">{notice}</div>}
        <ErrorNotice error={error} />
        <label className="field">
          <span>API key</span>
          <input type="password" name="key" autoComplete="current-password" placeholder="sk-…" value={key} onChange={(event) => setKey(event.target.value)} autoFocus />
        </label>
        <button type="submit" className="button primary wide" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <p className="hint">The key stays in this browser tab only (sessionStorage) and is sent to the gateway with each request.</p>
      </form>
    </div>
  );
}
