/** Hash routes (#/budgets, #/customers, #/customers/<id>): the server only ever serves index.html. */
import { useEffect, useState } from 'react';

export type Route = { page: 'budgets' } | { page: 'customers' } | { page: 'customer'; id: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, '');
  if (path.startsWith('customers/')) return { page: 'customer', id: decodeURIComponent(path.slice('customers/'.length)) };
  if (path === 'budgets') return { page: 'budgets' };
  return { page: 'customers' };
}

export function customerHref(id: string): string {
  return `#/customers/${encodeURIComponent(id)}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
