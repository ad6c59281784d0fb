/**
 * @module GraphQL resolvers: thin adapters over the services, mirroring the REST routes.
 * Inputs are validated by the same service-layer parsers (names reported in camelCase).
 */
import DataLoader from 'dataloader';
import { Arg, Ctx, FieldResolver, Float, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { GraphQLISODateTime } from 'type-graphql';
import { registerEnumType } from 'type-graphql';
import { GatewayError } from '../../shared/errors';
import { picoToDollars } from '../../shared/money';
import { CAMEL_NAMES, parseBudgetFields } from '../../services/budget-fields';
import { encodeCursor, type ReportGroup } from '../../services/spend';
import { parseAmount, parseLimit, parseOptionalString } from '../../services/validation';
import type { KeyRecord } from '../../governance/registry';
import type { GraphQLContext } from './context';
import { WebhookResolver } from '../../webhooks/graphql';
import { UsageExportResolver } from '../../exporters/graphql';
import { toBudget, toCustomer, toSpendLog } from './mappers';
import { SubscriptionResolver } from './subscriptions';
import { ViewerResolver } from '../viewer/graphql';
import { ConsoleResolver, OverviewResolver } from './console';
import { CreditResolver, CustomerCreditsResolver } from './credits';
import type { CustomerSort, CustomerStatus } from '../../services/customers';
import {
  ApiKey,
  Budget,
  BudgetInput,
  CreateBudgetInput,
  CreatedApiKey,
  CreateCustomerInput,
  Customer,
  CustomerConnection,
  CustomerFieldsInput,
  SpendLogConnection,
  SpendPeriod,
  SpendReportRow,
} from './types';

export enum SpendGroup {
  customer = 'customer',
  model = 'model',
  day = 'day',
}
registerEnumType(SpendGroup, { name: 'SpendGroup' });

export enum CustomerStatusValue {
  active = 'active',
  over_budget = 'over_budget',
  rate_limited = 'rate_limited',
  blocked = 'blocked',
}
registerEnumType(CustomerStatusValue, { name: 'CustomerStatus', description: 'blocked > over_budget > rate_limited (refused by a rate limit in the last minute) > active.' });

export enum CustomerSortValue {
  id = 'id',
  spend_desc = 'spend_desc',
  spend_asc = 'spend_asc',
}
registerEnumType(CustomerSortValue, { name: 'CustomerSort' });

export enum KeyScopeInput {
  inference = 'inference',
  admin = 'admin',
}
registerEnumType(KeyScopeInput, { name: 'KeyScope' });

function actor(ctx: GraphQLContext): string {
  return ctx.principal.kind === 'virtual' ? (ctx.principal.alias ?? ctx.principal.keyId ?? 'key') : 'litellm_proxy_admin_name';
}

function budgetFields(input: BudgetInput | null | undefined) {
  return input ? parseBudgetFields(input as Record<string, unknown>, CAMEL_NAMES) : {};
}

/** A customer's inline budget has no `prepaid` of its own (the customer's flag is on the customer). */
function inlineBudgetFields(input: BudgetInput | null | undefined) {
  const fields = budgetFields(input);
  delete fields.prepaid;
  return fields;
}

function checkFirst(first: number): number {
  if (!Number.isInteger(first) || first < 1 || first > 1000) throw new GatewayError('bad_request', 'first must be from 1 to 1000.', 'first');
  return first;
}

@Resolver(() => Customer)
export class CustomerResolver {
  @Query(() => Customer, { nullable: true, description: 'A customer by id, or null.' })
  async customer(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Customer | null> {
    const view = await ctx.services.customers.get(id);
    return view ? toCustomer(view) : null;
  }

  @Query(() => CustomerConnection, { description: 'Customers ordered by id (or spend); `after` is the endCursor of the previous page, or skip `offset` customers.' })
  async customers(
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Arg('search', () => String, { nullable: true }) search: string | null,
    @Ctx() ctx: GraphQLContext,
    @Arg('offset', () => Int, { nullable: true }) offset?: number | null,
    @Arg('budgetId', () => String, { nullable: true, description: "The budget in force (tier, private or default); '' for customers with none." }) budgetId?: string | null,
    @Arg('status', () => CustomerStatusValue, { nullable: true }) status?: CustomerStatusValue | null,
    @Arg('sort', () => CustomerSortValue, { nullable: true, defaultValue: CustomerSortValue.id }) sort?: CustomerSortValue | null,
  ): Promise<CustomerConnection> {
    if (offset !== null && offset !== undefined && (!Number.isInteger(offset) || offset < 0)) throw new GatewayError('bad_request', 'offset must be 0 or more.', 'offset');
    const page = await ctx.services.customers.list({
      first: checkFirst(first),
      after,
      search,
      offset: offset ?? 0,
      budgetId: budgetId ?? null,
      status: (status ?? null) as CustomerStatus | null,
      sort: (sort ?? 'id') as CustomerSort,
    });
    const last = page.items[page.items.length - 1];
    return {
      nodes: page.items.map(toCustomer),
      pageInfo: { hasNextPage: page.hasMore, endCursor: last ? last.customer.userId : null },
      totalCount: 0, // resolved below, only when selected
      search,
    };
  }

  @Mutation(() => Customer)
  async createCustomer(@Arg('input', () => CreateCustomerInput) input: CreateCustomerInput, @Ctx() ctx: GraphQLContext): Promise<Customer> {
    const view = await ctx.services.customers.create(
      {
        userId: input.id,
        alias: parseOptionalString('alias', input.alias),
        blocked: input.blocked ?? undefined,
        budgetId: input.budgetId ?? undefined,
        allowedModelRegion: input.allowedModelRegion ?? undefined,
        defaultModel: input.defaultModel ?? undefined,
        stripeCustomerId: input.stripeCustomerId ?? undefined,
        prepaid: input.prepaid ?? undefined,
        budget: inlineBudgetFields(input.budget),
      },
      actor(ctx),
      CAMEL_NAMES,
    );
    return toCustomer(view);
  }

  @Mutation(() => Customer)
  async updateCustomer(
    @Arg('id', () => ID) id: string,
    @Arg('input', () => CustomerFieldsInput) input: CustomerFieldsInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Customer> {
    const view = await ctx.services.customers.update(
      id,
      {
        alias: input.alias,
        blocked: input.blocked ?? undefined,
        budgetId: input.budgetId,
        allowedModelRegion: input.allowedModelRegion,
        defaultModel: input.defaultModel,
        stripeCustomerId: input.stripeCustomerId,
        prepaid: input.prepaid ?? undefined,
        budget: inlineBudgetFields(input.budget),
      },
      actor(ctx),
      CAMEL_NAMES,
    );
    return toCustomer(view);
  }

  @Mutation(() => Int, { description: 'Deletes customers (all must exist); returns how many.' })
  deleteCustomers(@Arg('ids', () => [ID]) ids: string[], @Ctx() ctx: GraphQLContext): Promise<number> {
    return ctx.services.customers.delete(ids, actor(ctx));
  }

  @Mutation(() => [Customer], { description: 'Blocks customers, creating unknown ones. Idempotent.' })
  async blockCustomers(@Arg('ids', () => [ID]) ids: string[], @Ctx() ctx: GraphQLContext): Promise<Customer[]> {
    return (await ctx.services.customers.setBlocked(ids, true, actor(ctx))).map(toCustomer);
  }

  @Mutation(() => [Customer], { description: 'Clears the blocked flag. Idempotent.' })
  async unblockCustomers(@Arg('ids', () => [ID]) ids: string[], @Ctx() ctx: GraphQLContext): Promise<Customer[]> {
    return (await ctx.services.customers.setBlocked(ids, false, actor(ctx))).map(toCustomer);
  }
}

@Resolver(() => Budget)
export class BudgetResolver {
  @Query(() => Budget, { nullable: true })
  budget(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Budget | null {
    const record = ctx.services.budgets.get(id);
    return record ? toBudget(record) : null;
  }

  @Query(() => [Budget])
  budgets(@Ctx() ctx: GraphQLContext): Budget[] {
    return ctx.services.budgets.list().map(toBudget);
  }

  @FieldResolver(() => Boolean, { description: 'Whether litellm_settings.max_end_user_budget_id names this budget (it applies to every customer without one).' })
  isDefault(@Root() budget: Budget, @Ctx() ctx: GraphQLContext): boolean {
    return ctx.services.budgets.isDefault(budget.id);
  }

  @FieldResolver(() => Int, { description: 'Customers under this budget: linked to it, plus (for the default budget) every customer without one.' })
  customerCount(@Root() budget: Budget, @Ctx() ctx: GraphQLContext): Promise<number> {
    // One grouped count for every budget of the operation, and only when the field is asked for.
    ctx.customerCounts ??= new DataLoader(async (ids: readonly string[]) => {
      const counts = await ctx.services.budgets.customerCounts(ids);
      return ids.map((id) => counts.get(id) ?? 0);
    });
    return ctx.customerCounts.load(budget.id);
  }

  @Mutation(() => Budget)
  async createBudget(@Arg('input', () => CreateBudgetInput) input: CreateBudgetInput, @Ctx() ctx: GraphQLContext): Promise<Budget> {
    const record = await ctx.services.budgets.create(input.id ?? null, budgetFields(input), actor(ctx), CAMEL_NAMES);
    return toBudget(record);
  }

  @Mutation(() => Budget)
  async updateBudget(@Arg('id', () => ID) id: string, @Arg('input', () => BudgetInput) input: BudgetInput, @Ctx() ctx: GraphQLContext): Promise<Budget> {
    return toBudget(await ctx.services.budgets.update(id, budgetFields(input), actor(ctx), CAMEL_NAMES));
  }

  @Mutation(() => Budget, { description: 'Refused (409) for the configured default budget, and while customers use the budget unless moveTo names a budget to move them to or detach is true.' })
  async deleteBudget(
    @Arg('id', () => ID) id: string,
    @Arg('detach', () => Boolean, { defaultValue: false }) detach: boolean,
    @Ctx() ctx: GraphQLContext,
    @Arg('moveTo', () => ID, { nullable: true, description: 'Move its customers to this budget, then delete.' }) moveTo?: string | null,
  ): Promise<Budget> {
    return toBudget(await ctx.services.budgets.delete(id, detach, moveTo ?? null, actor(ctx)));
  }
}

@Resolver()
export class SpendResolver {
  @Query(() => SpendLogConnection, { description: 'Ledger rows, newest first.' })
  async spendLogs(
    @Arg('customerId', () => ID, { nullable: true }) customerId: string | null,
    @Arg('from', () => GraphQLISODateTime, { nullable: true }) from: Date | null,
    @Arg('to', () => GraphQLISODateTime, { nullable: true }) to: Date | null,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<SpendLogConnection> {
    const result = await ctx.services.spend.logs({ customerId, from, to, first: checkFirst(first), after });
    const last = result.rows[result.rows.length - 1];
    return {
      nodes: result.rows.map(toSpendLog),
      pageInfo: { hasNextPage: result.hasMore, endCursor: last ? encodeCursor(last.createdAt, last.requestId) : null },
    };
  }

  @Query(() => [SpendPeriod], { description: "A customer's spend per budget period, newest first." })
  async spendPeriods(@Arg('customerId', () => ID) customerId: string, @Ctx() ctx: GraphQLContext): Promise<SpendPeriod[]> {
    return (await ctx.services.spend.periods(customerId)).map((row) => ({
      periodStart: row.periodStart,
      spend: picoToDollars(row.spendPico),
      requests: row.requests,
      promptTokens: row.promptTokens,
      completionTokens: row.completionTokens,
    }));
  }

  @Query(() => [SpendReportRow], { description: 'Spend between from and to, grouped by customer, model or day.' })
  async spendReport(
    @Arg('from', () => GraphQLISODateTime) from: Date,
    @Arg('to', () => GraphQLISODateTime) to: Date,
    @Arg('groupBy', () => SpendGroup) groupBy: SpendGroup,
    @Arg('customerId', () => ID, { nullable: true }) customerId: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<SpendReportRow[]> {
    return (await ctx.services.spend.report(from, to, groupBy as ReportGroup, customerId)).map((row) => ({
      key: row.key,
      spend: picoToDollars(row.chargePico),
      cost: picoToDollars(row.costPico),
      charge: picoToDollars(row.chargePico),
      margin: picoToDollars(row.chargePico - row.costPico),
      requests: row.requests,
      promptTokens: row.promptTokens,
      completionTokens: row.completionTokens,
    }));
  }
}

function toApiKey(k: KeyRecord): ApiKey {
  return {
    id: k.id,
    alias: k.alias,
    scope: k.scope,
    revoked: k.revoked,
    customerId: k.customerId,
    rpmLimit: k.limits?.rpmLimit ?? null,
    maxBudget: k.limits?.maxBudget != null ? picoToDollars(k.limits.maxBudget) : null,
  };
}

@Resolver(() => ApiKey)
export class KeyResolver {
  @Query(() => [ApiKey])
  apiKeys(@Ctx() ctx: GraphQLContext): ApiKey[] {
    return ctx.services.keys.list().map(toApiKey);
  }

  @Mutation(() => CreatedApiKey, { description: 'With customerId, the key is bound to that customer (see ApiKey.customerId).' })
  async createApiKey(
    @Arg('alias', () => String, { nullable: true }) alias: string | null,
    @Arg('scope', () => KeyScopeInput, { defaultValue: KeyScopeInput.inference }) scope: KeyScopeInput,
    @Arg('customerId', () => ID, { nullable: true }) customerId: string | null,
    @Arg('rpmLimit', () => Int, { nullable: true }) rpmLimit: number | null,
    @Arg('maxBudget', () => Float, { nullable: true }) maxBudget: number | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<CreatedApiKey> {
    const generated = await ctx.services.keys.generate(alias, scope, {
      customerId,
      rpmLimit: parseLimit('rpmLimit', rpmLimit),
      maxBudget: parseAmount('maxBudget', maxBudget),
    });
    return { key: generated.key, apiKey: toApiKey(generated.record) };
  }

  @Mutation(() => ApiKey)
  async revokeApiKey(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<ApiKey> {
    return toApiKey(await ctx.services.keys.revoke(id));
  }
}

/** `totalCount` costs a (bounded) count query: run only when a query selects it. */
@Resolver(() => CustomerConnection)
export class CustomerConnectionResolver {
  @FieldResolver(() => Int)
  totalCount(@Root() connection: CustomerConnection, @Ctx() ctx: GraphQLContext): Promise<number> {
    return ctx.services.customers.count(connection.search);
  }
}

export const RESOLVERS = [CreditResolver, CustomerCreditsResolver, CustomerResolver, CustomerConnectionResolver, BudgetResolver, SpendResolver, KeyResolver, WebhookResolver, UsageExportResolver, SubscriptionResolver, ViewerResolver, OverviewResolver, ConsoleResolver] as const;
