/**
 * Hash routes (#/overview, #/customers?…, #/customers/<id>, #/budgets, #/keys): the server
 * only ever serves index.html. A page's search, filters and page number live in the query
 * part, so reload, back and a shared link open the same view.
 */
import { useEffect, useState } from 'react';

export type Route =
  | { page: 'overview'; params: URLSearchParams }
  | { page: 'budgets'; params: URLSearchParams }
  | { page: 'keys'; params: URLSearchParams }
  | { page: 'customers'; params: URLSearchParams }
  | { page: 'customer'; id: string; params: URLSearchParams };

export function parseRoute(hash: string): Route {
  const full = hash.replace(/^#\/?/, '');
  const [path = '', query = ''] = full.split('?');
  const params = new URLSearchParams(query);
  if (path.startsWith('customers/')) return { page: 'customer', id: decodeURIComponent(path.slice('customers/'.length)), params };
  if (path === 'customers') return { page: 'customers', params };
  if (path === 'budgets') return { page: 'budgets', params };
  if (path === 'keys') return { page: 'keys', params };
  return { page: 'overview', params };
}

export function customerHref(id: string): string {
  return `#/customers/${encodeURIComponent(id)}`;
}

/** Replaces the query of the current route (no new history entry for every keystroke). */
export function setParams(path: string, values: Record<string, string | number | null | undefined>): void {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== null && value !== undefined && value !== '') params.set(key, String(value));
  const query = params.toString();
  const hash = `#/${path}${query ? `?${query}` : ''}`;
  if (window.location.hash !== hash) {
    window.history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  }
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
