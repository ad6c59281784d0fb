/** The page shell: sign-in when there is no key, else the header, the tabs and the current page. */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { handleUnauthorized } from './api/graphql';
import { connectLive } from './api/live';
import { LiveIndicator } from './components/live-indicator';
import { BudgetsPage } from './pages/budgets-page';
import { CustomerPage } from './pages/customer-page';
import { CustomersPage } from './pages/customers-page';
import { KeysPage } from './pages/keys-page';
import { OverviewPage } from './pages/overview-page';
import { SignInPage } from './pages/sign-in-page';
import { useRoute } from './router';
import { forgetKey, storedKey, storeKey } from './key-storage';
import { SessionContext, type Session } from './session';

export function App() {
  const [key, setKey] = useState<string | null>(() => storedKey());
  const [notice, setNotice] = useState<string | null>(null);

  const signOut = useCallback((reason?: string) => {
    forgetKey();
    setKey(null);
    setNotice(reason ?? null);
  }, []);
  useEffect(() => handleUnauthorized((message) => signOut(`Signed out: ${message}`)), [signOut]);

  if (!key) {
    return (
      <SignInPage
        notice={notice}
        onSignedIn={(signedIn) => {
          storeKey(signedIn);
          setNotice(null);
          setKey(signedIn);
        }}
      />
    );
  }
  return <SignedIn key={key} apiKey={key} signOut={signOut} />;
}

function SignedIn({ apiKey, signOut }: { apiKey: string; signOut: (reason?: string) => void }) {
  const live = useMemo(() => connectLive(apiKey), [apiKey]);
  useEffect(() => () => live.close(), [live]);
  useEffect(() => live.onState((state) => state === 'refused' && signOut('Signed out: the gateway refused this key for live updates.')), [live, signOut]);
  const session: Session = useMemo(() => ({ key: apiKey, live, signOut }), [apiKey, live, signOut]);
  const route = useRoute();
  const tab = route.page === 'customer' ? 'customers' : route.page;
  const tabs = [
    ['overview', 'Overview'],
    ['customers', 'Customers'],
    ['budgets', 'Budgets'],
    ['keys', 'Keys'],
  ] as const;

  return (
    <SessionContext.Provider value={session}>
      <header className="topbar">
        <div className="topbar-inner">
          <a className="brand" href="#/overview">
            <span className="brand-mark" aria-hidden="true">T</span> Tollgate
          </a>
          <nav className="tabs" aria-label="Sections">
            {tabs.map(([name, label]) => (
              <a key={name} href={`#/${name}`} className={tab === name ? 'tab active' : 'tab'} aria-current={tab === name ? 'page' : undefined}>
                {label}
              </a>
            ))}
          </nav>
          <div className="topbar-end">
            <LiveIndicator />
            <button type="button" className="button subtle" onClick={() => signOut()}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main className="content">
        {route.page === 'overview' && <OverviewPage params={route.params} />}
        {route.page === 'budgets' && <BudgetsPage />}
        {route.page === 'keys' && <KeysPage />}
        {route.page === 'customers' && <CustomersPage params={route.params} />}
        {route.page === 'customer' && <CustomerPage key={route.id} id={route.id} params={route.params} />}
      </main>
    </SessionContext.Provider>
  );
}
