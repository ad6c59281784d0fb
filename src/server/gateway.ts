/**
 * @module Assembles a running Tollgate: store → registry → ledger → internal resolver →
 * services → data plane + control plane on one node:http server. `stop()` is the graceful
 * path: stop accepting, drain in-flight requests, flush the ledger, close the store.
 */
import 'reflect-metadata';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ConfigError, type GatewayConfig } from '../config/load';
import { adminPrincipal } from '../control-plane/admin-auth';
import type { ControlPlane } from '../control-plane/app';
import { OpenSubscriptions } from '../control-plane/graphql/open-subscriptions';
import { ControlPlaneForwarder } from '../data-plane/control-forwarder';
import { ConnectionGuard, serverTimeoutOptions } from './connections';
import { IdleCollector } from './idle-collection';
import { tuneMalloc } from './malloc-tuning';
import { InferenceHandler } from '../data-plane/inference';
import { UndiciForwarder } from '../data-plane/forwarder';
import { configuredSecrets } from '../data-plane/upstream-errors';
import { bearerToken, sendError, sendJson } from '../data-plane/http-io';
import { ModelRouter } from '../data-plane/model-router';
import { matchInferenceRoute } from '../data-plane/routes';
import { SqlResponseStore } from '../data-plane/api-formats/responses/store';
import { Registry } from '../governance/registry';
import type { CustomerRecord } from '../governance/records';
import { BudgetResetTimer } from '../governance/reset-timer';
import { InternalResolver } from '../governance/resolver';
import { BudgetEventBus, SpendEventBus } from '../ledger/events';
import { Journal } from '../ledger/journal';
import { InFlightJournal } from '../ledger/in-flight-journal';
import { recoverInterrupted } from '../governance/in-flight';
import { Ledger } from '../ledger/ledger';
import { LedgerPartitions } from '../ledger/partitions';
import { createLogger, type Logger } from '../observability/logger';
import { GatewayMetrics } from '../observability/metrics';
import { createServices, type Services } from '../services';
import { KeyUsageRecorder } from '../activity/key-usage';
import { RefusalRecorder } from '../activity/refusals';
import { MemoryRateLimiter, MemorySpendBook } from '../shared-state/memory';
import { SharedStateCatchUp } from '../shared-state/catch-up';
import { RedisEventRelay } from '../shared-state/event-relay';
import { NO_INVALIDATION, RedisInvalidation, type Invalidation } from '../shared-state/invalidation';
import { connectRedis, RedisAdmissions, RedisRateLimiter, RedisSpendBook, type ScriptedRedis } from '../shared-state/redis';
import type { Admissions, RateLimiter, SpendBook } from '../shared-state/types';
import { GatewayError } from '../shared/errors';
import { loadTokenizer } from '../pricing/tokens';
import { checkAlertingSettings, setUpAlerting } from '../webhooks';
import { checkExporterSettings, setUpExporters } from '../exporters';
import { openDatabase, type Database } from '../store/database';
import { loadState, reloadAll, reloadChanged, replayRecovered, seedCounters } from '../store/load-state';

export interface GatewayOptions {
  port?: number;
  host?: string;
  logger?: Logger;
  now?: () => Date;
  /** Undelivered events one subscription may hold before it is cut off (default 1000). */
  subscriberQueueLimit?: number;
  /**
   * `all` (tollgate start): both planes. `control`: the control plane only, off the request
   * path. `proxy`: the data plane, forwarding every other route to `controlPlaneUrl`.
   */
  role?: GatewayRole;
  controlPlaneUrl?: string;
}

export type GatewayRole = 'all' | 'control' | 'proxy';

export interface RunningGateway {
  url: string;
  port: number;
  server: Server;
  services: Services;
  ledger: Ledger;
  partitions: LedgerPartitions;
  events: SpendEventBus;
  budgetEvents: BudgetEventBus;
  database: Database;
  stop(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger();
  const now = options.now ?? (() => new Date());
  for (const warning of config.warnings) logger.warn(warning);
  const role = options.role ?? 'all';
  if (role !== 'all') {
    // Separate processes only agree on spend and limits through a shared store and Redis.
    if (!config.databaseUrl) throw new ConfigError(`tollgate ${role}: DATABASE_URL (or general_settings.database_url) is required when the planes run apart`);
    if (!config.redisUrl) throw new ConfigError(`tollgate ${role}: REDIS_URL (or router_settings.redis_url) is required when the planes run apart`);
  }
  if (role === 'proxy' && !options.controlPlaneUrl) throw new ConfigError('tollgate proxy: --control-plane-url (or TOLLGATE_CONTROL_PLANE_URL) is required');
  checkAlertingSettings(config);
  // Before the tokenizer and the store's thread allocate what start-up frees again.
  const malloc = tuneMalloc(config.mallocMmapThresholdKb);
  logger.info({ malloc: malloc.tuning }, 'native memory: glibc mmap threshold');
  loadTokenizer(); // most of a second: before the port opens, not on the first request
  checkExporterSettings(config);

  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    log: (message) => logger.debug(message),
    vacuum: { onError: (error) => logger.warn({ err: error }, 'could not vacuum the embedded store; will retry') },
  });
  const registry = new Registry(config.masterKey, config.defaultBudgetId ?? null, config.customerCacheSize, config.keySecret);
  // REDIS_URL switches to shared counters: exact budgets and limits across proxies.
  let redis: ScriptedRedis | null = null;
  // An idle counter is forgotten once the store has all of it and the customer is not cached
  // here (its next request reads the store, which seeds the counter again).
  let spendBook: SpendBook = new MemorySpendBook({ storeHasAll: (customerId) => !registry.customers.tracks(customerId) && !ledger.hasUnflushed(customerId), now: options.now ? () => now().getTime() : Date.now });
  let rateLimiter: RateLimiter = new MemoryRateLimiter();
  let admissions: Admissions | undefined; // composed of the two above unless Redis has one script for it
  let invalidation: Invalidation = NO_INVALIDATION;
  let redisInvalidation: RedisInvalidation | null = null;
  if (config.redisUrl) {
    redis = await connectRedis(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs, onError: (error) => logger.warn({ err: error.message }, 'redis connection error') });
    spendBook = new RedisSpendBook(redis, config.redisKeyPrefix, config.reservationLeaseMs);
    rateLimiter = new RedisRateLimiter(redis, { prefix: config.redisKeyPrefix });
    admissions = new RedisAdmissions(redis, config.redisKeyPrefix, config.reservationLeaseMs);
    redisInvalidation = new RedisInvalidation(redis, config.redisKeyPrefix, logger);
    invalidation = redisInvalidation;
  }
  const events = new SpendEventBus();
  const budgetEvents = new BudgetEventBus();
  const eventRelay = redis ? new RedisEventRelay(redis, config.redisKeyPrefix, events, budgetEvents, logger) : null;
  await eventRelay?.start();
  const partitions = new LedgerPartitions(database.orm, config.ledgerRetentionDays, logger, now);
  // Before the journal replay, which writes into today's partition (and older ones).
  await partitions.start();
  const ledger = new Ledger(database.orm, new Journal(join(config.dataDir, 'journal')), logger, config.ledgerFlushIntervalMs, partitions);
  const alerting = setUpAlerting({ config, orm: database.orm, ledger, budgetEvents, logger, now });
  const exporters = setUpExporters({ config, orm: database.orm, ledger, logger, now });
  const recovered = await ledger.recover();
  // After the crash journal (a request that settled before the kill keeps its own row):
  // charge the streams a killed process left in flight, give back what it had reserved.
  const inFlight = new InFlightJournal(join(config.dataDir, 'journal'), config.inFlightJournalIntervalMs, logger);
  const interrupted = await recoverInterrupted({ journal: inFlight, ledger, spendBook, rateLimiter, logger });
  // Before seeding: a counter the book lacks is seeded from the store, which has them all.
  await replayRecovered([...recovered, ...interrupted], spendBook, now().getTime(), logger);
  if (redisInvalidation) {
    // Subscribed before loading, so no change made meanwhile is missed.
    await redisInvalidation.start(
      (changes) => {
        const reload = reloadChanged(database.orm, registry, changes).catch((error) =>
          logger.error({ err: error, changes }, 'could not reload entities another process changed'),
        );
        registry.trackReload(reload);
        return reload;
      },
      () => {
        // Notices published while Redis was away never arrived, and a restarted Redis has
        // lost its counters: reload the registry, and seed counters Redis lacks (for the
        // customers cached here; any other is seeded when it is next read).
        logger.info('redis is back: reloading budgets, keys and cached customers, and seeding missing counters');
        registry.trackReload(
          Promise.all([reloadAll(database.orm, registry), untilItSucceeds(() => seedCounters(database.orm, spendBook, [...registry.customers.cached()], currentStart))]).then(
            () => undefined,
            (error) => logger.error({ err: error }, 'could not catch up after the redis connection came back'),
          ),
        );
      },
    );
  }
  // Which stored counter is a customer's current one is the resolver's to say (created below,
  // before any customer is read).
  const currentStart = (customer: CustomerRecord, scope: string) => resolver.counterStartOf(customer, scope);
  await loadState(database.orm, registry, spendBook, currentStart);
  if (registry.defaultBudgetMissing()) {
    logger.warn(
      { budgetId: config.defaultBudgetId },
      'litellm_settings.max_end_user_budget_id names a budget that does not exist yet; it applies as soon as it is created (POST /budget/new)',
    );
  }
  const catchUp = new SharedStateCatchUp(logger);
  ledger.keepJournalWhile(() => catchUp.queued > 0);
  const openSubscriptions = new OpenSubscriptions();
  const metrics: GatewayMetrics = new GatewayMetrics(role, {
    inFlightRequests: (): number => inference.activeRequests,
    ledgerBacklog: () => ledger.backlog,
    sharedCounterCatchUp: () => catchUp.pending,
    liveSubscriptions: () => openSubscriptions.count,
    exporterBacklog: () => services.exporters.backlog(),
  });
  const resolver = new InternalResolver({
    registry,
    spendBook,
    rateLimiter,
    admissions,
    ledger,
    events,
    timezone: config.timezone,
    now,
    catchUp,
    failMode: config.failMode,
    logger,
    onMetered: (record) => metrics.metered(record),
    inFlight,
    unknownCustomers: config.unknownCustomers,
    budgetExceededStatus: config.budgetExceededStatus,
    moveCounter: (customerId, scope) => services.spend.recompute([customerId], { outOfPeriod: scope }),
  });
  const refusals = new RefusalRecorder(database.orm, registry, logger, now);
  const keyUsage = new KeyUsageRecorder(database.orm, logger);
  registry.onKeyUsed = (keyId, atMs) => keyUsage.used(keyId, atMs);
  const services = createServices({ orm: database.orm, config, registry, resolver, spendBook, invalidation, ledger, events, logger, now, refusals, keyUsage });
  const forwarder = new UndiciForwarder();
  const inference = new InferenceHandler({
    registry,
    resolver,
    router: new ModelRouter(config.deployments),
    forwarder,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    secrets: configuredSecrets(config),
    metrics,
    customerIdSources: config.customerIdSources,
    responseStore: new SqlResponseStore(database.orm, config.responseRetentionMs, now),
    refusals,
  });

  let ready = false;
  let controlPlane: ControlPlane | null = null;
  const controlForwarder = role === 'proxy' ? new ControlPlaneForwarder(options.controlPlaneUrl!, logger) : null;
  let connections: ConnectionGuard | null = null;
  const server = createServer(serverTimeoutOptions(config.connectionLimits), (request: IncomingMessage, response: ServerResponse) => {
    if (!connections!.track(request, response)) return;
    const path = (request.url ?? '/').split('?')[0]!;
    const inferenceRoute = matchInferenceRoute(path);
    if (role === 'control' && inferenceRoute) {
      return sendError(response, new GatewayError('not_found', `This process is the control plane (tollgate control): send ${path} to a proxy.`, null, {}, 421));
    }
    if (inferenceRoute) {
      void inference.handle(inferenceRoute, request, response);
      return;
    }
    if (path === '/health/liveliness' || path === '/health/liveness') return sendJson(response, 200, { status: "I'm alive!" });
    if (path === '/health/readiness') {
      const detail = {
        status: ready ? 'healthy' : 'starting',
        db: database.kind,
        ledger: { healthy: ledger.healthy, backlog: ledger.backlog },
        default_budget: config.defaultBudgetId
          ? { budget_id: config.defaultBudgetId, exists: !registry.defaultBudgetMissing() }
          : null,
        warnings: registry.defaultBudgetMissing() ? [`max_end_user_budget_id "${config.defaultBudgetId}" does not exist yet`] : [],
      };
      return sendJson(response, ready ? 200 : 503, detail);
    }
    // Every process answers for itself: scrape each proxy and the control plane.
    if (path === '/metrics') return serveMetrics(metrics, registry, request, response);
    if (controlForwarder) return controlForwarder.web(request, response);
    if (!controlPlane) return sendError(response, new GatewayError('service_unavailable', 'Starting up.'));
    controlPlane.app(request, response);
  });
  connections = new ConnectionGuard(server, config.connectionLimits, logger);
  if (controlForwarder) server.on('upgrade', (request, socket, head) => controlForwarder.upgrade(request, socket, head));
  else {
    // Loaded here, not imported: a proxy never needs the GraphQL stack and Express (about a
    // thousand modules and tens of MB it would otherwise hold).
    const { createControlPlane } = await import('../control-plane/app.js');
    controlPlane = await createControlPlane({ services, registry, httpServer: server, logger, limits: config.graphqlLimits, live: { spend: events, budget: budgetEvents, subscriberQueueLimit: options.subscriberQueueLimit, open: openSubscriptions } });
  }
  ledger.start();
  inFlight.start();
  alerting.start();
  refusals.start();
  keyUsage.start();
  exporters.start();
  const resetTimer = new BudgetResetTimer(registry, resolver, database.orm, logger, now);
  resetTimer.start();
  const idleCollector = new IdleCollector({
    quietMs: config.idleCollectionMs,
    activity: () => connections!.requestsSeen,
    inFlight: () => connections!.openRequests,
    releaseFreePages: malloc.releaseFreePages,
    onCollected: (durationMs) => logger.debug({ durationMs: Math.round(durationMs) }, 'quiet: full garbage collection'),
  });
  idleCollector.start();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4000, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  ready = true;
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, role, store: database.kind, sharedCounters: redis ? 'redis' : 'memory', models: config.deployments.map((d) => d.modelName) }, 'Tollgate is ready');

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      ready = false;
      resetTimer.stop();
      idleCollector.stop();
      const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
      // Requests in flight (and those still arriving on open connections) are served to the
      // end; a non-streamed answer whose client left is still being read and billed.
      const drainDeadline = Date.now() + config.drainTimeoutMs;
      await connections!.drain(config.drainTimeoutMs);
      await Promise.race([inference.waitForDrain(), new Promise((resolve) => setTimeout(resolve, Math.max(0, drainDeadline - Date.now())).unref())]);
      inFlight.stop();
      partitions.stop();
      await ledger.stop();
      await refusals.stop();
      await keyUsage.stop();
      await alerting.stop();
      await exporters.stop();
      await controlPlane?.stop();
      controlForwarder?.close();
      await eventRelay?.stop();
      server.closeAllConnections();
      server.close(); // node:http's own close: stops its timeout checks (the listener is already closed)
      await closed;
      await forwarder.close();
      await inference.close();
      await database.close();
      await catchUp.drain();
      catchUp.stop();
      ledger.discardCommitted([]); // what Redis has taken meanwhile need not be replayed

      await invalidation.stop();
      if (redis) await redis.quit().catch(() => redis!.disconnect());
    })();
    return stopping;
  };

  return { url: `http://127.0.0.1:${port}`, port, server, services, ledger, partitions, events, budgetEvents, database, stop };
}

/** `GET /metrics` in Prometheus text format; needs an admin key, like the control plane. */
function serveMetrics(metrics: GatewayMetrics, registry: Registry, request: IncomingMessage, response: ServerResponse): void {
  const { error } = adminPrincipal(registry, bearerToken(request));
  if (error) return sendError(response, error);
  if (request.method !== 'GET') return sendError(response, new GatewayError('invalid_request', 'Use GET for /metrics.', null, { allow: 'GET' }, 405));
  metrics.render().then(
    (text) => {
      response.writeHead(200, { 'content-type': metrics.contentType });
      response.end(text);
    },
    (caught: Error) => sendError(response, new GatewayError('internal_error', `Could not collect metrics: ${caught.message}`)),
  );
}

/**
 * Retries `operation` a few times, half a second apart: the subscriber connection may be back
 * before the one the counters use (after a stall, each reconnects on its own).
 */
async function untilItSucceeds(operation: () => Promise<void>, attempts = 20): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
