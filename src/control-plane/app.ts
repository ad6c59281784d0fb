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
import { GraphQLError, specifiedRules, validate, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Registry } from '../governance/registry';
import type { Principal } from '../governance/records';
import type { Logger } from '../observability/logger';
import type { Services } from '../services';
import { GatewayError, isGatewayError } from '../shared/errors';
import { bearerToken } from '../data-plane/http-io';
import type { GraphQLContext } from './graphql/context';
import { depthLimit } from './graphql/depth-limit';
import { nulGuard } from './graphql/nul-guard';
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

export const MAX_GRAPHQL_DEPTH = 8;

/** Resolves the caller of a control-plane request; null when the key may not administer. */
export function adminPrincipal(registry: Registry, bearer: string | null): { principal: Principal | null; error: GatewayError | null } {
  const principal = registry.authenticate(bearer);
  if (!principal) return { principal: null, error: new GatewayError('unauthorized', 'Authentication failed: pass an admin key as "Authorization: Bearer <key>".') };
  if (principal.scope !== 'admin') {
    return { principal: null, error: new GatewayError('unauthorized', 'This key is scoped to inference; control-plane routes need the master key or an admin key.') };
  }
  return { principal, error: null };
}

function renderError(response: Response, error: GatewayError): void {
  response.status(error.status).set(error.headers);
  if (response.locals.envelope === 'detail') response.json({ detail: { error: error.message } });
  else response.json(error.toEnvelope());
}

export async function createControlPlane(options: { services: Services; registry: Registry; httpServer: Server; logger: Logger; extraResolvers?: Function[]; live?: LiveEvents }): Promise<ControlPlane> {
  const { services, registry, httpServer, logger } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // The UI's static files need no key: the page asks for one and sends it to /graphql.
  app.use('/ui', adminUi());
  // A key bound to a customer reads its own usage there, and nothing else.
  app.use(boundKeyRoutes(services, registry));

  app.use((request: Request, response: Response, next: NextFunction) => {
    const { principal, error } = adminPrincipal(registry, bearerToken(request));
    if (error) return renderError(response, error);
    response.locals.principal = principal;
    next();
  });
  app.use(express.json({ limit: '1mb', strict: false }));

  app.use('/customer', customerRoutes(services));
  app.use('/end_user', customerRoutes(services));
  app.use('/budget', budgetRoutes(services));
  app.use('/key', keyRoutes(services));
  app.use('/spend', spendRoutes(services));
  app.use('/health', healthRoutes(services));
  app.use('/exporters', exporterRoutes(services));

  const schema = buildGatewaySchema(options.extraResolvers);
  const wsServer = new WebSocketServer({ noServer: true });
  // Keys are checked when a WebSocket connects; this sweep closes the live connections of
  // keys revoked since (here or, through the invalidation channel, on another process).
  const principals = new WeakMap<object, Principal>();
  const revocationSweep = setInterval(() => {
    for (const socket of wsServer.clients) {
      const principal = principals.get(socket);
      if (principal?.kind === 'virtual' && registry.keys.get(principal.keyHash)?.revoked !== false) socket.close(4403, 'Forbidden: key revoked');
    }
  }, 1000);
  revocationSweep.unref();
  const wsCleanup = useServer<Record<string, unknown>, { principal?: Principal }>(
    {
      schema,
      validate: (s, document) => validate(s, document, [...specifiedRules, depthLimit(MAX_GRAPHQL_DEPTH)]),
      onConnect: (ctx) => {
        const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        const bearer = typeof raw === 'string' ? (/^Bearer\s+(.+)$/i.exec(raw.trim())?.[1] ?? raw.trim()) : null;
        const { principal } = adminPrincipal(registry, bearer);
        if (!principal) return false; // graphql-ws closes with 4403 Forbidden
        ctx.extra.principal = principal;
        principals.set(ctx.extra.socket, principal);
        return true;
      },
      context: (ctx): GraphQLContext => ({ principal: ctx.extra.principal!, services, live: options.live }),
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
    validationRules: [depthLimit(MAX_GRAPHQL_DEPTH)],
    introspection: true,
    // The gateway owns SIGTERM/SIGINT and stops the pieces in order (data plane first).
    // Apollo's own handler would run a second stop() concurrently with ours, and that second
    // call never returns in this Apollo version: the process then hangs instead of exiting.
    stopOnTerminationSignals: false,
    // Apollo adds stack traces to error responses unless NODE_ENV is production or test.
    includeStacktraceInErrorResponses: false,
    plugins: [
      nulGuard,
      // The gateway drains the shared HTTP server itself (data plane first); Apollo only
      // has to close the subscription sockets.
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
    ],
    formatError: (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
      const original = error instanceof GraphQLError ? error.originalError : error;
      if (isGatewayError(original)) {
        return { ...formatted, message: original.message, extensions: { code: original.code, status: original.status, param: original.param } };
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
      context: async ({ res }) => ({ principal: res.locals.principal as Principal, services }),
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
      clearInterval(revocationSweep);
      await apollo.stop();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
