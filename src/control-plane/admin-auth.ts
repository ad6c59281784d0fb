/**
 * @module Who may use the control plane: the master key or an admin key. Its own module so the
 * data plane (a proxy's `/metrics`) checks the same rule without loading the control plane.
 */
import type { Registry } from '../governance/registry';
import type { Principal } from '../governance/records';
import { GatewayError } from '../shared/errors';

export function adminPrincipal(registry: Registry, bearer: string | null): { principal: Principal | null; error: GatewayError | null } {
  const principal = registry.authenticate(bearer);
  if (!principal) return { principal: null, error: new GatewayError('unauthorized', 'Authentication failed: pass an admin key as "Authorization: Bearer <key>".') };
  if (principal.scope !== 'admin') {
    return { principal: null, error: new GatewayError('unauthorized', 'This key is scoped to inference; control-plane routes need the master key or an admin key.') };
  }
  return { principal, error: null };
}
