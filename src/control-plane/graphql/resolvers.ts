/**
 * @module GraphQL resolvers: thin adapters over the services, mirroring the REST routes.
 * Inputs are validated by the same service-layer parsers (names reported in camelCase).
 */
import { Arg, Ctx, Float, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
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

function checkFirst(first: number): number {
  if (!Number.isInteger(first) || first < 1 || first > 1000) throw new GatewayError('bad_request', 'first must be from 1 to 1000.', 'first');
  return first;
}

@Resolver(() => Customer)
export class CustomerResolver {
  @Query(() => Customer, { nullable: true, description: 'A customer by id, or null.' })
  async customer(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Customer | null> {
    const view = await ctx.services.customers.get(id);
    return view ? toCustomer(view, ctx.services) : null;
  }

  @Query(() => CustomerConnection, { description: 'Customers ordered by id; `after` is the endCursor of the previous page.' })
  async customers(
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Arg('search', () => String, { nullable: true }) search: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<CustomerConnection> {
    const page = await ctx.services.customers.list({ first: checkFirst(first), after, search });
    const last = page.items[page.items.length - 1];
    return {
      nodes: page.items.map((view) => toCustomer(view, ctx.services)),
      pageInfo: { hasNextPage: page.hasMore, endCursor: last ? last.customer.userId : null },
      totalCount: page.total,
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
        budget: budgetFields(input.budget),
      },
      actor(ctx),
    );
    return toCustomer(view, ctx.services);
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
        budget: budgetFields(input.budget),
      },
      actor(ctx),
    );
    return toCustomer(view, ctx.services);
  }

  @Mutation(() => Int, { description: 'Deletes customers (all must exist); returns how many.' })
  deleteCustomers(@Arg('ids', () => [ID]) ids: string[], @Ctx() ctx: GraphQLContext): Promise<number> {
    return ctx.services.customers.delete(ids);
  }

  @Mutation(() => [Customer], { description: 'Blocks customers, creating unknown ones. Idempotent.' })
  async blockCustomers(@Arg('ids', () => [ID]) ids: string[], @Ctx() ctx: GraphQLContext): Promise<Customer[]> {
    return (await ctx.services.customers.setBlocked(ids, true)).map((view) => toCustomer(view, ctx.services));
  }

  @Mutation(() => [Customer], { description: 'Clears the blocked flag. Idempotent.' })
  async unblockCustomers(@Arg('ids', () => [ID]) ids: string[], @Ctx() ctx: GraphQLContext): Promise<Customer[]> {
    return (await ctx.services.customers.setBlocked(ids, false)).map((view) => toCustomer(view, ctx.services));
  }
}

@Resolver(() => Budget)
export class BudgetResolver {
  @Query(() => Budget, { nullable: true })
  budget(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Budget | null {
    const record = ctx.services.budgets.get(id);
    return record ? toBudget(record, ctx.services) : null;
  }

  @Query(() => [Budget])
  budgets(@Ctx() ctx: GraphQLContext): Budget[] {
    return ctx.services.budgets.list().map((record) => toBudget(record, ctx.services));
  }

  @Mutation(() => Budget)
  async createBudget(@Arg('input', () => CreateBudgetInput) input: CreateBudgetInput, @Ctx() ctx: GraphQLContext): Promise<Budget> {
    const record = await ctx.services.budgets.create(input.id ?? null, budgetFields(input), actor(ctx));
    return toBudget(record, ctx.services);
  }

  @Mutation(() => Budget)
  async updateBudget(@Arg('id', () => ID) id: string, @Arg('input', () => BudgetInput) input: BudgetInput, @Ctx() ctx: GraphQLContext): Promise<Budget> {
    return toBudget(await ctx.services.budgets.update(id, budgetFields(input), actor(ctx)), ctx.services);
  }

  @Mutation(() => Budget, { description: 'Refused while customers use the budget unless detach is true.' })
  async deleteBudget(
    @Arg('id', () => ID) id: string,
    @Arg('detach', () => Boolean, { defaultValue: false }) detach: boolean,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Budget> {
    const record = await ctx.services.budgets.delete(id, detach);
    return Object.assign(toBudget(record, ctx.services), { customerCount: 0 });
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

export const RESOLVERS = [CustomerResolver, BudgetResolver, SpendResolver, KeyResolver, WebhookResolver, UsageExportResolver, SubscriptionResolver, ViewerResolver] as const;
