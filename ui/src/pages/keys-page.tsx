/** The Keys tab: virtual keys with scope, alias, when made and last used; create (shown once) and revoke. */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { API_KEYS, CREATE_API_KEY, REVOKE_API_KEY, type ApiKeyDetails } from '../api/operations';
import { ErrorNotice } from '../components/error-notice';
import { Modal } from '../components/modal';
import { dateTime } from '../format';
import { customerHref } from '../router';
import { useGraphQL } from '../session';

type Dialog = { kind: 'create' } | { kind: 'created'; key: string; alias: string | null } | { kind: 'revoke'; key: ApiKeyDetails } | null;

export function KeysPage() {
  const graphql = useGraphQL();
  const [keys, setKeys] = useState<ApiKeyDetails[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [flash, setFlash] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setKeys((await graphql<{ apiKeyList: ApiKeyDetails[] }>(API_KEYS)).apiKeyList);
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [graphql]);
  useEffect(() => void load(), [load]);
  const close = useCallback(() => setDialog(null), []);

  return (
    <section>
      <div className="page-header">
        <div>
          <h1>Keys</h1>
          <p className="muted">Virtual keys for your applications. An inference key may only call the model routes; an admin key may also use this console and the admin API. The master key is not listed.</p>
        </div>
        <button type="button" className="button primary" onClick={() => setDialog({ kind: 'create' })}>
          + Create key
        </button>
      </div>
      {flash && (
        <div className="notice success" role="status">
          {flash}
        </div>
      )}
      <ErrorNotice error={error} title="Could not load keys." />
      <div className="card">
        <table className="table responsive" data-testid="keys">
          <thead>
            <tr>
              <th>Alias</th>
              <th>Key</th>
              <th>Scope</th>
              <th>Customer</th>
              <th>Created</th>
              <th>Last used</th>
              <th>State</th>
              <th>
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys?.map((key) => (
              <tr key={key.id} data-key={key.id}>
                <td data-label="Alias" className="strong">{key.alias ?? <span className="muted">no alias</span>}</td>
                <td data-label="Key" className="mono">{key.prefix}…</td>
                <td data-label="Scope">{key.scope}</td>
                <td data-label="Customer" data-testid="bound-customer">{key.customerId ? <a href={customerHref(key.customerId)} className="mono">{key.customerId}</a> : <span className="muted">any</span>}</td>
                <td data-label="Created">{dateTime(key.createdAt)}</td>
                <td data-label="Last used" data-testid="last-used">{key.lastUsedAt ? dateTime(key.lastUsedAt) : 'Never'}</td>
                <td data-label="State">{key.revoked ? <span className="pill blocked">Revoked {dateTime(key.revokedAt)}</span> : <span className="pill active">Active</span>}</td>
                <td className="actions">
                  {!key.revoked && (
                    <button type="button" className="button small danger-text" aria-label={`Revoke ${key.alias ?? key.prefix}`} onClick={() => setDialog({ kind: 'revoke', key })}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
            {keys && !keys.length && (
              <tr>
                <td colSpan={8} className="empty">No virtual keys yet. Create one with “+ Create key”.</td>
              </tr>
            )}
            {!keys && !error && (
              <tr>
                <td colSpan={8} className="empty">Loading…</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {dialog?.kind === 'create' && (
        <Modal title="Create key" onClose={close}>
          <CreateKeyForm
            onCancel={close}
            onCreate={async (alias, scope, customerId) => {
              const data = await graphql<{ createApiKey: { key: string } }>(CREATE_API_KEY, { alias, scope, customerId });
              await load();
              setDialog({ kind: 'created', key: data.createApiKey.key, alias });
            }}
          />
        </Modal>
      )}
      {dialog?.kind === 'created' && (
        <Modal title="Key created" onClose={close}>
          <p>Copy this key now: it is shown only once and cannot be read again.</p>
          <label className="field">
            <span>New key{dialog.alias ? ` (${dialog.alias})` : ''}</span>
            <input readOnly value={dialog.key} data-testid="new-key" onFocus={(event) => event.target.select()} />
          </label>
          <div className="dialog-actions">
            <button type="button" className="button primary" onClick={close}>
              Done
            </button>
          </div>
        </Modal>
      )}
      {dialog?.kind === 'revoke' && (
        <Modal title={`Revoke key ${dialog.key.alias ?? dialog.key.prefix}`} onClose={close}>
          <RevokeKey
            apiKey={dialog.key}
            onCancel={close}
            onRevoke={async () => {
              await graphql(REVOKE_API_KEY, { id: dialog.key.id });
              setDialog(null);
              await load();
              setFlash(`Revoked key ${dialog.key.alias ?? dialog.key.prefix}.`);
            }}
          />
        </Modal>
      )}
    </section>
  );
}

function CreateKeyForm({ onCreate, onCancel }: { onCreate: (alias: string | null, scope: string, customerId: string | null) => Promise<void>; onCancel: () => void }) {
  const [alias, setAlias] = useState('');
  const [scope, setScope] = useState('inference');
  const [customerId, setCustomerId] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onCreate(alias.trim() || null, scope, scope === 'inference' ? customerId.trim() || null : null);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} noValidate>
      <ErrorNotice error={error} title="Could not create the key." />
      <div className="form-grid">
        <label className="field span-2">
          <span>Alias</span>
          <input name="alias" value={alias} placeholder="e.g. billing-service" onChange={(event) => setAlias(event.target.value)} />
        </label>
        <fieldset className="field span-2 radio-group">
          <legend>Scope</legend>
          <label>
            <input type="radio" name="scope" value="inference" checked={scope === 'inference'} onChange={() => setScope('inference')} /> Inference: model routes only
          </label>
          <label>
            <input type="radio" name="scope" value="admin" checked={scope === 'admin'} onChange={() => setScope('admin')} /> Admin: also this console and the admin API
          </label>
        </fieldset>
        {scope === 'inference' && (
          <label className="field span-2">
            <span>Bound customer (optional)</span>
            <input name="customerId" value={customerId} placeholder="an existing customer id" aria-describedby="bound-customer-help" onChange={(event) => setCustomerId(event.target.value)} />
            <small id="bound-customer-help" className="muted">
              Every request with this key is that customer's, whatever the request says: safe to ship in a browser or phone app.
            </small>
          </label>
        )}
      </div>
      <div className="dialog-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}

function RevokeKey({ apiKey, onRevoke, onCancel }: { apiKey: ApiKeyDetails; onRevoke: () => Promise<void>; onCancel: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <div>
      <ErrorNotice error={error} title="Could not revoke the key." />
      <p>
        Requests with <span className="mono">{apiKey.prefix}…</span> are refused from the moment it is revoked. This cannot be undone.
      </p>
      <div className="dialog-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button
          type="button"
          className="button danger"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            onRevoke().catch((caught: unknown) => {
              setError(caught);
              setBusy(false);
            });
          }}
        >
          Revoke key
        </button>
      </div>
    </div>
  );
}
