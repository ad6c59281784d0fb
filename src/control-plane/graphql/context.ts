/** @module What every resolver receives: the caller and the shared services. */
import type { Principal } from '../../governance/records';
import type { Services } from '../../services';

export interface GraphQLContext {
  principal: Principal;
  services: Services;
}
