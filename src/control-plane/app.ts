/**
 * @module The control plane: LiteLLM-compatible REST routes, Apollo GraphQL at /graphql with
 * graphql-ws subscriptions on the same path, and the admin UI at /ui. Every route needs an
 * admin-scoped key; an inference-scoped key gets 401, a key bound to a customer its own
 * usage only (viewer/routes.ts).
 */
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { getOperationAST, GraphQLError, parse, validate, type DocumentNode, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Registry } from '../governance/registry';
import type { Principal } from '../governance/records';
import type { Logger } from '../observability/logger';
import type { Services } from '../services';
import { GatewayError, isGatewayError } from '../shared/errors';
import { bearerToken } from '../data-plane/http-io';
import { adminPrincipal } from './admin-auth';
import type { GraphQLContext } from './graphql/context';
import { allValidationRules, costWithVariables, DEFAULT_GRAPHQL_LIMITS, limitRules, startTimeBudget, variableCostGuard, type GraphQLLimits } from './graphql/limits';
import { nulGuard } from './graphql/nul-guard';
import { subscriptionsOverWebSocketOnly } from './graphql/http-operations';
import { nestedDeeperThan, nestingError } from '../services/validation';
import { buildGatewaySchema } from './graphql/schema';
import type { LiveEvents } from './graphql/subscriptions';
import { adminUi } from './ui/static';
import { budgetRoutes, customerRoutes, keyRoutes, spendRoutes } from './rest/routes';
import { healthRoutes } from '../webhooks/health-route';
import { exporterRoutes } from '../exporters/rest';
import { boundKeyRoutes } from './viewer/routes';

export interface ControlPlane {
  app: express.Express;
  schema: GraphQLSchema;
  stop(): Promise<void>;
}

/** The first path segments the control plane serves (everything below needs an admin key). */
const CONTROL_PLANE_ROOTS = new Set(['customer', 'end_user', 'budget', 'key', 'spend', 'health', 'graphql', 'exporters']);

/** Resolves the caller of a control-plane request; null when the key may not administer. */
function renderError(response: Response, error: GatewayError): void {
  response.status(error.status).set(error.headers);
  if (response.locals.envelope === 'detail') response.json({ detail: { error: error.message } });
  else response.json(error.toEnvelope());
}

export async function createControlPlane(options: { services: Services; registry: Registry; httpServer: Server; logger: Logger; extraResolvers?: Function[]; live?: LiveEvents; limits?: Partial<GraphQLLimits> }): Promise<ControlPlane> {
  const { services, registry, httpServer, logger } = options;
  const limits: GraphQLLimits = { ...DEFAULT_GRAPHQL_LIMITS, ...options.limits };
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // The UI's static files need no key: the page asks for one and sends it to /graphql.
  app.use('/ui', adminUi());
  // A key bound to a customer reads its own usage there, and nothing else.
  app.use(boundKeyRoutes(services, registry));

  // A path no plane serves is a 404 for every caller, before any key check: an inference key
  // must not read "scoped to inference" (an auth error to SDKs) for a route that does not exist.
  app.use((request: Request, response: Response, next: NextFunction) => {
    const top = request.path.split('/')[1] ?? '';
    if (!CONTROL_PLANE_ROOTS.has(top)) return renderError(response, new GatewayError('not_found', `No route ${request.method} ${request.path}.`));
    next();
  });
  app.use((request: Request, response: Response, next: NextFunction) => {
    const { principal, error } = adminPrincipal(registry, bearerToken(request));
    if (error) return renderError(response, error);
    response.locals.principal = principal;
    next();
  });
  app.use(express.json({ limit: '1mb', strict: false }));
  // Deep nesting is refused here, once, before any recursive code (validation messages,
  // GraphQL variable coercion) walks it and overflows the stack.
  app.use((request: Request, response: Response, next: NextFunction) => {
    if (nestedDeeperThan(request.body)) return renderError(response, nestingError('request body'));
    next();
  });

  app.use('/customer', customerRoutes(services));
  app.use('/end_user', customerRoutes(services));
  app.use('/budget', budgetRoutes(services));
  app.use('/key', keyRoutes(services));
  app.use('/spend', spendRoutes(services));
  app.use('/health', healthRoutes(services));
  app.use('/exporters', exporterRoutes(services));

  const schema = buildGatewaySchema(options.extraResolvers);
  const wsServer = new WebSocketServer({ noServer: true });
  // Keys are checked when a WebSocket connects; a key revoked since (here, or on another
  // process and reloaded from its change notice) closes its live connections the moment the
  // revocation is applied, so no event reaches them after.
  const principals = new WeakMap<object, Principal>();
  const stopWatchingKeys = registry.onKeysChanged(() => {
    for (const socket of wsServer.clients) {
      const principal = principals.get(socket);
      if (principal?.kind === 'virtual' && registry.keys.get(principal.keyHash)?.revoked !== false) socket.close(4403, 'Forbidden: key revoked');
    }
  });
  const wsCleanup = useServer<Record<string, unknown>, { principal?: Principal }>(
    {
      schema,
      // Parsed and validated here with the same limits as HTTP: a refused document is an
      // error message on its subscription, never a closed connection.
      onSubscribe: (_ctx, _id, payload) => {
        if (nestedDeeperThan(payload.variables)) return [new GraphQLError(nestingError('variables object').message, { extensions: { code: 'BAD_USER_INPUT' } })];
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: limits.maxTokens });
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
        }
        const errors = validate(schema, document, allValidationRules(limits));
        if (errors.length) return [...errors];
        const overCost = costWithVariables(schema, document, payload.variables, limits);
        if (overCost.length) return [...overCost];
        return { schema, document, variableValues: payload.variables, operationName: payload.operationName };
      },
      onConnect: (ctx) => {
        const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        const bearer = typeof raw === 'string' ? (/^Bearer\s+(.+)$/i.exec(raw.trim())?.[1] ?? raw.trim()) : null;
        const { principal } = adminPrincipal(registry, bearer);
        if (!principal) return false; // graphql-ws closes with 4403 Forbidden
        ctx.extra.principal = principal;
        principals.set(ctx.extra.socket, principal);
        return true;
      },
      context: (ctx, _id, _payload, args): GraphQLContext => ({
        principal: ctx.extra.principal!,
        services,
        live: options.live,
        // A subscription lives as long as its client wants; queries and mutations are budgeted.
        timeBudget: getOperationAST(args.document, args.operationName)?.operation === 'subscription' ? undefined : startTimeBudget(limits),
      }),
    },
    wsServer,
  );
  httpServer.on('upgrade', (request, socket, head) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/graphql') {
      socket.destroy();
      return;
    }
    wsServer.handleUpgrade(request, socket, head, (ws) => wsServer.emit('connection', ws, request));
  });

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    validationRules: limitRules(limits),
    parseOptions: { maxTokens: limits.maxTokens },
    introspection: true,
    // The gateway owns SIGTERM/SIGINT and stops the pieces in order (data plane first).
    // Apollo's own handler would run a second stop() concurrently with ours, and that second
    // call never returns in this Apollo version: the process then hangs instead of exiting.
    stopOnTerminationSignals: false,
    // Apollo adds stack traces to error responses unless NODE_ENV is production or test.
    includeStacktraceInErrorResponses: false,
    plugins: [
      nulGuard,
      subscriptionsOverWebSocketOnly,
      variableCostGuard(schema, limits),
      // The gateway drains the shared HTTP server itself (data plane first); Apollo only
      // has to close the subscription sockets.
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
    ],
    formatError: (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
      const original = error instanceof GraphQLError ? error.originalError : error;
      if (isGatewayError(original)) {
        return { ...formatted, message: original.message, extensions: { code: original.code, status: original.status, param: original.param } };
      }
      // Apollo's own refusals of a request (a persisted query whose hash does not match, say)
      // carry a 4xx status but no code; they are the caller's mistake, said as Apollo says it.
      const httpStatus = (error instanceof GraphQLError ? (error.extensions?.http as { status?: number } | undefined)?.status : undefined) ?? 500;
      if (formatted.extensions?.code === 'INTERNAL_SERVER_ERROR' && httpStatus >= 400 && httpStatus < 500) {
        return { message: formatted.message, extensions: { code: 'BAD_REQUEST' } };
      }
      // graphql-js refusing an argument while executing (a null variable for an argument that
      // cannot be null, say) is the caller's input, not a failure of ours. Its other errors
      // without a code ("Cannot return null for non-nullable field") are our bugs: kept 500.
      if (formatted.extensions?.code === 'INTERNAL_SERVER_ERROR' && original instanceof GraphQLError && !original.originalError && /^(Argument|Variable) "/.test(original.message)) {
        return { ...formatted, extensions: { code: 'BAD_USER_INPUT' } };
      }
      if (formatted.extensions?.code === 'INTERNAL_SERVER_ERROR') {
        logger.error({ err: original }, 'GraphQL resolver failed');
        return { message: 'Internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
      }
      return formatted;
    },
  });
  await apollo.start();
  app.use(
    '/graphql',
    expressMiddleware(apollo, {
      context: async ({ res }) => ({ principal: res.locals.principal as Principal, services, timeBudget: startTimeBudget(limits) }),
    }),
  );

  app.use((request: Request, response: Response) => {
    renderError(response, new GatewayError('not_found', `No route ${request.method} ${request.path}.`));
  });
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    if (isGatewayError(error)) return renderError(response, error);
    const status = (error as { status?: number; type?: string }).status;
    if (status && status >= 400 && status < 500) {
      const message = (error as { type?: string }).type === 'entity.parse.failed' ? `Request body is not valid JSON: ${(error as Error).message}` : (error as Error).message;
      return renderError(response, new GatewayError('bad_request', message, null, {}, status));
    }
    logger.error({ err: error }, 'control-plane request failed');
    renderError(response, new GatewayError('internal_error', 'Internal error.'));
  });

  return {
    app,
    schema,
    stop: async () => {
      stopWatchingKeys();
      await apollo.stop();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
