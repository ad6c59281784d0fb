/**
 * @module The control plane as a key bound to a customer sees it: `GET /customer/me` (also
 * `/end_user/me`) and `POST /graphql` against the viewer-only schema. Any other route is a 403
 * naming what such a key may read. Keys not bound to a customer pass through untouched.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { graphql, GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Registry } from '../../governance/registry';
import type { Principal } from '../../governance/records';
import type { Services } from '../../services';
import type { ViewerView } from '../../services/viewer';
import { GatewayError, isGatewayError } from '../../shared/errors';
import { picoToDollars } from '../../shared/money';
import { bearerToken } from '../../data-plane/http-io';
import type { GraphQLContext } from '../graphql/context';
import { buildViewerSchema } from './graphql';

const dollarsOrNull = (pico: bigint | null) => (pico === null ? null : picoToDollars(pico));

/** `GET /customer/me`: LiteLLM-style snake_case, dollars as JSON numbers, charges only. */
export function viewerJson(view: ViewerView) {
  return {
    user_id: view.customerId,
    alias: view.alias,
    spend: picoToDollars(view.spendPico),
    max_budget: dollarsOrNull(view.maxBudgetPico),
    budget_remaining: dollarsOrNull(view.budgetRemainingPico),
    period_start: view.periodStart.toISOString(),
    budget_reset_at: view.resetAt?.toISOString() ?? null,
    key: { key_alias: view.key.alias, rpm_limit: view.key.rpmLimit, max_budget: dollarsOrNull(view.key.maxBudgetPico), spend: picoToDollars(view.key.spendPico) },
    usage: view.usage.map((day) => ({ day: day.day, requests: day.requests, prompt_tokens: day.promptTokens, completion_tokens: day.completionTokens, spend: picoToDollars(day.chargePico) })),
    credits: view.credits ? { granted: picoToDollars(view.credits.grantedPico), consumed: picoToDollars(view.credits.consumedPico), balance: picoToDollars(view.credits.balancePico) } : null,
  };
}

function formatError(error: GraphQLError): GraphQLFormattedError {
  const original = error.originalError;
  if (isGatewayError(original)) return { message: original.message, path: error.path, extensions: { code: original.code, status: original.status, param: original.param } };
  if (original) return { message: 'Internal error', path: error.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  return error.toJSON();
}

export function boundKeyRoutes(services: Services, registry: Registry): Router {
  const router = Router();
  router.use((request: Request, response: Response, next: NextFunction) => {
    const principal = registry.authenticate(bearerToken(request));
    if (!principal?.customerId) return next('router');
    response.locals.principal = principal;
    next();
  });
  router.use(express.json({ limit: '64kb', strict: false }));

  router.get(['/customer/me', '/end_user/me'], async (request: Request, response: Response, next: NextFunction) => {
    try {
      const view = await services.viewer.me(response.locals.principal as Principal, { from: request.query.start_date, to: request.query.end_date });
      response.json(viewerJson(view));
    } catch (error) {
      next(error);
    }
  });

  router.post('/graphql', async (request: Request, response: Response, next: NextFunction) => {
    try {
      const body = request.body as { query?: unknown; variables?: unknown; operationName?: unknown } | undefined;
      if (!body || typeof body.query !== 'string') throw new GatewayError('bad_request', 'POST /graphql needs a JSON body with a "query" string.', 'query');
      const variables = body.variables && typeof body.variables === 'object' && !Array.isArray(body.variables) ? (body.variables as Record<string, unknown>) : undefined;
      const contextValue: GraphQLContext = { principal: response.locals.principal as Principal, services };
      const result = await graphql({
        schema: buildViewerSchema(),
        source: body.query,
        variableValues: variables,
        operationName: typeof body.operationName === 'string' ? body.operationName : undefined,
        contextValue,
      });
      const errors = result.errors?.map(formatError);
      // Refused before execution (syntax, unknown field, a mutation): the query itself is wrong.
      response.status(result.data === undefined && errors ? 400 : 200).json({ ...(errors ? { errors } : {}), ...(result.data !== undefined ? { data: result.data } : {}) });
    } catch (error) {
      next(error);
    }
  });

  router.use((request: Request, response: Response, next: NextFunction) => {
    const principal = response.locals.principal as Principal;
    next(
      new GatewayError(
        'forbidden',
        `This key is bound to customer "${principal.customerId}": it can read only GET /customer/me and the GraphQL viewer query, not ${request.method} ${request.path}.`,
      ),
    );
  });
  return router;
}
