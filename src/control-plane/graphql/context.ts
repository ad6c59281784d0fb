/** @module What every resolver receives: the caller and the shared services. */
import type DataLoader from 'dataloader';
import type { Principal } from '../../governance/records';
import type { Services } from '../../services';
import type { TimeBudgeted } from './limits';
import type { LiveEvents } from './subscriptions';

export interface GraphQLContext extends TimeBudgeted {
  principal: Principal;
  services: Services;
  /** The event buses; set only on graphql-ws connections (subscriptions). */
  live?: LiveEvents;
  /** Customers per budget, batched over one operation (created when first asked for). */
  customerCounts?: DataLoader<string, number>;
}
