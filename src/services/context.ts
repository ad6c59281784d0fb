/** @module What every service needs; built once at start-up by the app. */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { GatewayConfig } from '../config/load';
import type { InternalResolver } from '../governance/resolver';
import type { Registry } from '../governance/registry';
import type { Ledger } from '../ledger/ledger';
import type { SpendEventBus } from '../ledger/events';
import type { Logger } from '../observability/logger';
import type { Invalidation } from '../shared-state/invalidation';
import type { SpendBook } from '../shared-state/types';
import type { KeyUsageRecorder } from '../activity/key-usage';
import type { RefusalRecorder } from '../activity/refusals';

export interface ServiceContext {
  orm: MikroORM;
  config: GatewayConfig;
  registry: Registry;
  resolver: InternalResolver;
  spendBook: SpendBook;
  /** Tells other processes sharing the store which entities changed (no-op for one process). */
  invalidation: Invalidation;
  ledger: Ledger;
  events: SpendEventBus;
  logger: Logger;
  now: () => Date;
  /** Refused requests and key use, written in batches off the request path. */
  refusals: RefusalRecorder;
  keyUsage: KeyUsageRecorder;
}
