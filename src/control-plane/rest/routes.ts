/**
 * @module LiteLLM-compatible REST routes: thin adapters that parse the wire shape, call the
 * services and render the result. Every /customer/* route is also served at /end_user/*.
 * Error envelopes follow LiteLLM per route: customer routes use ProxyException
 * `{error:{message,type,param,code}}`; budget and block routes use `{detail:{error}}`.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Principal } from '../../governance/records';
import { GatewayError } from '../../shared/errors';
import { picoToDollars } from '../../shared/money';
import { parseBudgetFields } from '../../services/budget-fields';
import type { CustomerInput } from '../../services/customers';
import type { Services } from '../../services';
import { encodeCursor, type ReportGroup } from '../../services/spend';
import { statementCsv, statementJson } from '../../services/statements';
import {
  findNulCharacter,
  invalid,
  nulCharacterError,
  parseAmount,
  parseDate,
  parseLimit,
  parseOptionalBoolean,
  parseOptionalString,
  requireObject,
  requireStringArray,
} from '../../services/validation';
import { budgetJson, creditsJson, customerJson, grantJson, spendLogJson, spendReportJson } from './wire';

type Handler = (request: Request, response: Response) => Promise<unknown> | unknown;

function actorOf(response: Response): string {
  const principal = response.locals.principal as Principal | undefined;
  return principal?.kind === 'virtual' ? (principal.alias ?? principal.keyId ?? 'key') : 'litellm_proxy_admin_name';
}

/** Wraps a handler: its return value is the JSON body; thrown GatewayErrors become envelopes. */
function route(envelope: 'proxy' | 'detail', handler: Handler) {
  return async (request: Request, response: Response, next: NextFunction) => {
    response.locals.envelope = envelope;
    try {
      const nul = findNulCharacter(request.body, '') ?? findNulCharacter(request.query, '');
      if (nul) throw nulCharacterError(nul);
      const result = await handler(request, response);
      if (!response.headersSent) response.json(result);
    } catch (error) {
      next(error);
    }
  };
}

function bodyOf(request: Request): Record<string, unknown> {
  return requireObject(request.body);
}

function customerInputFrom(body: Record<string, unknown>): CustomerInput {
  if (body.user_id === undefined || body.user_id === null) throw invalid('user_id', 'is required');
  return {
    userId: body.user_id as string,
    alias: parseOptionalString('alias', body.alias),
    blocked: parseOptionalBoolean('blocked', body.blocked),
    budgetId: parseOptionalString('budget_id', body.budget_id),
    allowedModelRegion: parseOptionalString('allowed_model_region', body.allowed_model_region),
    defaultModel: parseOptionalString('default_model', body.default_model),
    stripeCustomerId: parseOptionalString('stripe_customer_id', body.stripe_customer_id),
    prepaid: parseOptionalBoolean('prepaid', body.prepaid),
    // `prepaid` on a customer is its own flag, not a field of an inline budget.
    budget: parseBudgetFields({ ...body, prepaid: undefined }),
  };
}

function pageParameters(request: Request): { page: number; pageSize: number } {
  const page = request.query.page === undefined ? 1 : Number(request.query.page);
  const pageSize = request.query.page_size === undefined ? 100 : Number(request.query.page_size);
  if (!Number.isInteger(page) || page < 1) throw invalid('page', 'must be an integer >= 1');
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) throw invalid('page_size', 'must be an integer from 1 to 1000');
  return { page, pageSize };
}

export function customerRoutes(services: Services): Router {
  const router = Router();
  const { customers } = services;

  router.post('/new', route('proxy', async (request, response) => {
    const view = await customers.create(customerInputFrom(bodyOf(request)), actorOf(response));
    return customerJson(view);
  }));

  router.get('/info', route('proxy', async (request) => {
    const id = request.query.end_user_id;
    if (typeof id !== 'string' || !id) throw invalid('end_user_id', 'query parameter is required');
    const view = await customers.require(id);
    const prepaid = services.context.registry.isPrepaid(view.customer);
    return customerJson(view, prepaid ? await services.credits.balance(id) : null);
  }));

  /** A month's statement by day and model: JSON, or CSV with `format=csv` (or Accept: text/csv). */
  router.get('/statement', route('proxy', async (request, response) => {
    const format = request.query.format ?? (request.accepts(['application/json', 'text/csv']) === 'text/csv' ? 'csv' : 'json');
    if (format !== 'json' && format !== 'csv') throw invalid('format', 'must be json or csv');
    const statement = await services.statements.monthly(request.query.end_user_id, request.query.period);
    if (format === 'json') return statementJson(statement);
    response
      .type('text/csv; charset=utf-8')
      .attachment(`statement-${statement.customerId.replace(/[^\w.-]/g, '_')}-${statement.period}.csv`)
      .send(statementCsv(statement));
  }));

  /** Prepaid credits: grant (idempotent by reference), read the balance, void a grant by reference. */
  router.post('/credits/grant', route('proxy', async (request, response) => {
    const body = bodyOf(request);
    const result = await services.credits.grant(
      { customerId: body.end_user_id ?? body.user_id, amount: body.amount, reference: body.reference, kind: body.kind, expiresAt: body.expires_at },
      actorOf(response),
    );
    response.status(result.created ? 201 : 200);
    return { created: result.created, grant: grantJson(result.grant), ...creditsJson(result.balance) };
  }));

  router.get('/credits', route('proxy', async (request) => {
    const id = request.query.end_user_id;
    if (typeof id !== 'string' || !id) throw invalid('end_user_id', 'query parameter is required');
    return creditsJson(await services.credits.balance(id));
  }));

  router.post('/credits/void', route('proxy', async (request, response) => {
    const body = bodyOf(request);
    const result = await services.credits.void({ customerId: body.end_user_id ?? body.user_id, reference: body.reference }, actorOf(response));
    return { voided: result.voided, grant: grantJson(result.grant), ...creditsJson(result.balance) };
  }));

  router.post('/update', route('proxy', async (request, response) => {
    const input = customerInputFrom(bodyOf(request));
    const { userId, budget, ...rest } = input;
    const view = await customers.update(userId, { ...rest, budget }, actorOf(response));
    return customerJson(view);
  }));

  router.post('/delete', route('proxy', async (request) => {
    const ids = requireStringArray('user_ids', bodyOf(request).user_ids);
    if (!ids.length) throw invalid('user_ids', 'must name at least one customer');
    const count = await customers.delete(ids);
    return { deleted_customers: count, message: `Successfully deleted customers with ids: [${ids.map((id) => `'${id}'`).join(', ')}]` };
  }));

  router.get('/list', route('proxy', async (request, response) => {
    const { page, pageSize } = pageParameters(request);
    const search = typeof request.query.search === 'string' ? request.query.search : null;
    // `after` (the x-next-cursor of the previous page) pages on the index at constant cost;
    // `page` numbers cost more the deeper they go.
    const after = typeof request.query.after === 'string' && request.query.after ? request.query.after : null;
    const [result, total] = await Promise.all([
      customers.list({ first: pageSize, after, offset: after ? 0 : (page - 1) * pageSize, search }),
      customers.count(search),
    ]);
    // The body stays LiteLLM's plain array; pagination travels in headers.
    response.setHeader('x-total-count', String(total));
    response.setHeader('x-page', String(page));
    response.setHeader('x-page-size', String(pageSize));
    const last = result.items[result.items.length - 1];
    if (result.hasMore && last) response.setHeader('x-next-cursor', last.customer.userId);
    return result.items.map((view) => customerJson(view));
  }));

  router.post('/block', route('detail', async (request, response) => {
    const ids = requireStringArray('user_ids', bodyOf(request).user_ids);
    const views = await customers.setBlocked(ids, true, actorOf(response));
    return { blocked_users: views.map((view) => customerJson(view)) };
  }));

  router.post('/unblock', route('detail', async (request, response) => {
    const ids = requireStringArray('user_ids', bodyOf(request).user_ids);
    const views = await customers.setBlocked(ids, false, actorOf(response));
    return { unblocked_users: views.map((view) => customerJson(view)) };
  }));

  return router;
}

export function budgetRoutes(services: Services): Router {
  const router = Router();
  const { budgets } = services;

  router.post('/new', route('detail', async (request, response) => {
    const body = bodyOf(request);
    const id = parseOptionalString('budget_id', body.budget_id);
    const budget = await budgets.create(id, parseBudgetFields(body), actorOf(response));
    return budgetJson(budget);
  }));

  router.post('/update', route('detail', async (request, response) => {
    const body = bodyOf(request);
    const id = parseOptionalString('budget_id', body.budget_id);
    if (!id) throw invalid('budget_id', 'is required');
    return budgetJson(await budgets.update(id, parseBudgetFields(body), actorOf(response)));
  }));

  router.post('/info', route('detail', (request) => {
    const ids = requireStringArray('budgets', bodyOf(request).budgets);
    if (!ids.length) throw new GatewayError('bad_request', "Specify list of budget id's to query. Passed in=[]", 'budgets');
    return ids.map((id) => budgets.get(id)).filter((b) => b !== null).map(budgetJson);
  }));

  router.get('/list', route('detail', () => budgets.list().map(budgetJson)));

  router.get('/settings', route('detail', (request) => {
    const id = request.query.budget_id;
    if (typeof id !== 'string' || !id) throw invalid('budget_id', 'query parameter is required');
    const budget = budgets.require(id);
    const fields: [string, string, string, unknown][] = [
      ['max_parallel_requests', 'Integer', 'Max concurrent requests allowed for this budget id.', budget.maxParallelRequests],
      ['tpm_limit', 'Integer', 'Max tokens per minute, allowed for this budget id.', budget.tpmLimit],
      ['rpm_limit', 'Integer', 'Max requests per minute, allowed for this budget id.', budget.rpmLimit],
      ['budget_duration', 'String', 'Frequency of resetting budget. E.g. "1d", "30d", "1mo".', budget.duration?.text ?? null],
      ['max_budget', 'Float', 'Max budget for this budget id (USD).', budget.maxBudget === null ? null : picoToDollars(budget.maxBudget)],
      ['soft_budget', 'Float', 'Soft budget: alerts only (USD).', budget.softBudget === null ? null : picoToDollars(budget.softBudget)],
      ['model_max_budget', 'Object', 'Per-model budgets: {model: {max_budget, budget_duration}}.', budgetJson(budget).model_max_budget],
    ];
    return fields.map(([field_name, field_type, field_description, field_value]) => ({
      field_name,
      field_type,
      field_description,
      field_value,
      stored_in_db: true,
      field_default_value: null,
    }));
  }));

  router.post('/delete', route('detail', async (request, response) => {
    const body = bodyOf(request);
    const id = parseOptionalString('id', body.id ?? body.budget_id);
    if (!id) throw invalid('id', 'is required');
    const detach = parseOptionalBoolean('detach', body.detach) ?? false;
    return budgetJson(await budgets.delete(id, detach, null, actorOf(response)));
  }));

  return router;
}

export function keyRoutes(services: Services): Router {
  const router = Router();
  router.post('/generate', route('detail', async (request) => {
    const body = request.body === undefined ? {} : bodyOf(request);
    const alias = parseOptionalString('key_alias', body.key_alias) ?? null;
    const scope = (parseOptionalString('scope', body.scope) ?? 'inference') as 'inference' | 'admin';
    const generated = await services.keys.generate(alias, scope, {
      customerId: parseOptionalString('customer_id', body.customer_id),
      rpmLimit: parseLimit('rpm_limit', body.rpm_limit),
      maxBudget: parseAmount('max_budget', body.max_budget),
    });
    const { record } = generated;
    return {
      key: generated.key,
      key_alias: alias,
      token: record.id,
      scope,
      customer_id: record.customerId,
      rpm_limit: record.limits?.rpmLimit ?? null,
      max_budget: record.limits?.maxBudget != null ? picoToDollars(record.limits.maxBudget) : null,
      created_at: generated.createdAt.toISOString(),
    };
  }));
  router.post('/delete', route('detail', async (request) => {
    const keys = requireStringArray('keys', bodyOf(request).keys);
    for (const key of keys) await services.keys.revoke(key);
    return { deleted_keys: keys };
  }));
  return router;
}

export function spendRoutes(services: Services): Router {
  const router = Router();
  router.get('/logs', route('detail', async (request, response) => {
    const q = request.query;
    const first = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(first) || first < 1 || first > 1000) throw invalid('limit', 'must be an integer from 1 to 1000');
    const result = await services.spend.logs({
      customerId: typeof q.end_user === 'string' ? q.end_user : typeof q.customer_id === 'string' ? q.customer_id : null,
      from: parseDate('start_date', q.start_date),
      to: parseDate('end_date', q.end_date),
      first,
      after: typeof q.after === 'string' ? q.after : null,
    });
    const last = result.rows[result.rows.length - 1];
    // LiteLLM returns a plain array; the cursor for the next page travels in a header.
    if (result.hasMore && last) response.setHeader('x-next-cursor', encodeCursor(last.createdAt, last.requestId));
    return result.rows.map(spendLogJson);
  }));
  /** Cost, charge and margin between two dates, grouped by customer, model or day. */
  router.get('/report', route('detail', async (request) => {
    const q = request.query;
    const from = parseDate('start_date', q.start_date);
    const to = parseDate('end_date', q.end_date);
    if (!from) throw invalid('start_date', 'query parameter is required (ISO 8601)');
    if (!to) throw invalid('end_date', 'query parameter is required (ISO 8601)');
    const groupBy = q.group_by ?? 'customer';
    if (groupBy !== 'customer' && groupBy !== 'model' && groupBy !== 'day') throw invalid('group_by', 'must be customer, model or day');
    const customerId = typeof q.customer_id === 'string' && q.customer_id ? q.customer_id : null;
    return (await services.spend.report(from, to, groupBy as ReportGroup, customerId)).map(spendReportJson);
  }));
  return router;
}
