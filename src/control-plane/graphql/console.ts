/**
 * @module GraphQL for the operator's console: the overview's aggregates (one `overview`
 * object whose fields are computed only when asked for), refused requests, alert history,
 * a customer's audit trail and the keys list with last use. Thin: each field calls a service.
 */
import { Arg, Ctx, Field, FieldResolver, Float, GraphQLISODateTime, ID, Int, ObjectType, Query, Resolver, Root, registerEnumType } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { GatewayError } from '../../shared/errors';
import { picoToDollars } from '../../shared/money';
import { parseTimeZone, startOfDay, type SeriesBucket, type SpendSum } from '../../services/aggregates';
import { parseDate } from '../../services/validation';
import type { GraphQLContext } from './context';
import { BudgetAlert, toBudgetAlert } from './subscriptions';

export enum SeriesBucketInput {
  hour = 'hour',
  day = 'day',
}
registerEnumType(SeriesBucketInput, { name: 'SeriesBucket' });

@ObjectType({ description: 'Spend and request count over a span.' })
export class SpendTotal {
  @Field(() => Float) spend!: number;
  @Field(() => Int) requests!: number;
}

@ObjectType({ description: 'Spend summed by one key: a customer id, a model, a budget id, or an hour/day of the series.' })
export class SpendSlice {
  @Field(() => String, { description: "Customer id, model, budget id ('' = none), YYYY-MM-DD or YYYY-MM-DDTHH." }) key!: string;
  @Field(() => Float) spend!: number;
  @Field(() => Int) requests!: number;
}

@ObjectType({ description: 'A customer at or past a fraction of the max budget in force.' })
export class CapStanding {
  @Field(() => ID) customerId!: string;
  @Field(() => Float) spend!: number;
  @Field(() => Float) maxBudget!: number;
  @Field(() => String) budgetId!: string;
  @Field(() => Float, { description: 'spend / maxBudget (1 or more: over budget, refused).' }) used!: number;
}

@ObjectType({ description: 'Refused requests of one reason.' })
export class RefusalReasonCount {
  @Field(() => String, { description: 'The error code sent: budget_exceeded, rate_limit_exceeded, customer_blocked, service_unavailable.' }) reason!: string;
  @Field(() => Int) count!: number;
  @Field(() => Int) customers!: number;
}

@ObjectType({ description: 'Refused requests of one customer × model × reason within one minute (count = how many).' })
export class RefusedRequest {
  @Field(() => ID) customerId!: string;
  @Field(() => String) model!: string;
  @Field(() => String) reason!: string;
  @Field(() => Int) status!: number;
  @Field(() => String, { nullable: true, description: 'max_budget, model_max_budget, rpm, tpm, parallel or blocked.' }) limitType!: string | null;
  @Field(() => String, { nullable: true }) limitValue!: string | null;
  @Field(() => String, { nullable: true }) budgetId!: string | null;
  @Field(() => String) message!: string;
  @Field(() => Int) count!: number;
  @Field(() => GraphQLISODateTime) firstAt!: Date;
  @Field(() => GraphQLISODateTime) lastAt!: Date;
}

@ObjectType({ description: 'One change to a customer: who, when, and each field before and after.' })
export class CustomerAuditEntry {
  @Field(() => ID) id!: string;
  @Field(() => String, { description: 'created, updated, blocked, unblocked or deleted.' }) action!: string;
  @Field(() => String) actor!: string;
  @Field(() => GraphQLJSONObject, { description: '{field: [before, after]}' }) changes!: Record<string, unknown>;
  @Field(() => GraphQLISODateTime) at!: Date;
}

@ObjectType({ description: 'A virtual key as the Keys page lists it (never the key itself).' })
export class ApiKeyDetails {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true }) alias!: string | null;
  @Field(() => String) scope!: string;
  @Field(() => Boolean) revoked!: boolean;
  @Field(() => String, { description: 'The first characters of the key.' }) prefix!: string;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  @Field(() => GraphQLISODateTime, { nullable: true }) revokedAt!: Date | null;
  @Field(() => GraphQLISODateTime, { nullable: true, description: 'Recorded in batches: up to a few seconds behind.' }) lastUsedAt!: Date | null;
  @Field(() => ID, { nullable: true, description: 'The customer a bound key always acts for.' }) customerId!: string | null;
}

@ObjectType({ description: "The operator's overview for a range; each field is computed only when selected." })
export class Overview {
  @Field(() => GraphQLISODateTime) from!: Date;
  @Field(() => GraphQLISODateTime) to!: Date;
  @Field(() => String, { description: 'The time zone days and "today" are counted in.' }) timeZone!: string;
  bucket!: SeriesBucket;
  now!: Date;
}

function slice(row: SpendSum): SpendSlice {
  return { key: row.key, spend: picoToDollars(row.spendPico), requests: row.requests };
}

function total(sum: { spendPico: bigint; requests: number }): SpendTotal {
  return { spend: picoToDollars(sum.spendPico), requests: sum.requests };
}

function checkCount(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new GatewayError('bad_request', `${name} must be from 1 to ${max}.`, name);
  return value;
}

@Resolver(() => Overview)
export class OverviewResolver {
  @Query(() => Overview, { description: 'Spend aggregates between from and to (the chart range); today and the last 30 days are counted up to now.' })
  overview(
    @Arg('from', () => GraphQLISODateTime) from: Date,
    @Arg('to', () => GraphQLISODateTime) to: Date,
    @Arg('timeZone', () => String, { nullable: true, description: 'IANA zone for days and "today"; default litellm_settings.timezone.' }) timeZone: string | null,
    @Arg('bucket', () => SeriesBucketInput, { defaultValue: SeriesBucketInput.day }) bucket: SeriesBucketInput,
    @Ctx() ctx: GraphQLContext,
  ): Overview {
    parseDate('from', from);
    parseDate('to', to);
    if (to.getTime() <= from.getTime()) throw new GatewayError('bad_request', '"to" must be after "from".', 'to');
    const zone = parseTimeZone('timeZone', timeZone, ctx.services.context.config.timezone);
    return Object.assign(new Overview(), { from, to, timeZone: zone, bucket, now: ctx.services.context.now() });
  }

  @FieldResolver(() => SpendTotal, { description: 'Since midnight in timeZone.' })
  async today(@Root() root: Overview, @Ctx() ctx: GraphQLContext): Promise<SpendTotal> {
    return total(await ctx.services.aggregates.total(startOfDay(root.now, root.timeZone), new Date(root.now.getTime() + 1)));
  }

  @FieldResolver(() => SpendTotal, { description: 'The last 30 × 24 hours.' })
  async last30Days(@Root() root: Overview, @Ctx() ctx: GraphQLContext): Promise<SpendTotal> {
    return total(await ctx.services.aggregates.total(new Date(root.now.getTime() - 30 * 86_400_000), new Date(root.now.getTime() + 1)));
  }

  @FieldResolver(() => Float, { description: "The sum of every customer's spend in its current budget period (lifetime for a budget without a period)." })
  async periodSpend(@Ctx() ctx: GraphQLContext): Promise<number> {
    return picoToDollars(await ctx.services.aggregates.currentPeriodTotal());
  }

  @FieldResolver(() => SpendTotal, { description: 'Between from and to.' })
  async range(@Root() root: Overview, @Ctx() ctx: GraphQLContext): Promise<SpendTotal> {
    return total(await ctx.services.aggregates.total(root.from, root.to));
  }

  @FieldResolver(() => [SpendSlice], { description: 'Every hour or day of the range, zeros included; of one customer when customerId is given.' })
  async series(@Root() root: Overview, @Ctx() ctx: GraphQLContext, @Arg('customerId', () => ID, { nullable: true }) customerId?: string | null): Promise<SpendSlice[]> {
    return (await ctx.services.aggregates.series(root.from, root.to, root.bucket, root.timeZone, customerId ?? null)).map(slice);
  }

  @FieldResolver(() => [SpendSlice], { description: "Highest spend first; key '' is requests without a customer." })
  async topCustomers(@Root() root: Overview, @Arg('first', () => Int, { defaultValue: 10 }) first: number, @Ctx() ctx: GraphQLContext): Promise<SpendSlice[]> {
    return (await ctx.services.aggregates.topCustomers(root.from, root.to, checkCount('first', first, 100))).map(slice);
  }

  @FieldResolver(() => [SpendSlice])
  async byModel(@Root() root: Overview, @Ctx() ctx: GraphQLContext): Promise<SpendSlice[]> {
    return (await ctx.services.aggregates.byModel(root.from, root.to)).map(slice);
  }

  @FieldResolver(() => [SpendSlice], { description: "By the budget in force for each customer now; key '' is no budget." })
  async byTier(@Root() root: Overview, @Ctx() ctx: GraphQLContext): Promise<SpendSlice[]> {
    return (await ctx.services.aggregates.byTier(root.from, root.to)).map(slice);
  }

  @FieldResolver(() => [RefusalReasonCount])
  async refusalsByReason(@Root() root: Overview, @Ctx() ctx: GraphQLContext): Promise<RefusalReasonCount[]> {
    return ctx.services.refusals.byReason(root.from, root.to);
  }

  @FieldResolver(() => [CapStanding], { description: 'Customers at or past `fraction` of their max budget this period, the most used first.' })
  async nearCap(
    @Arg('fraction', () => Float, { defaultValue: 0.8 }) fraction: number,
    @Arg('first', () => Int, { defaultValue: 20 }) first: number,
    @Ctx() ctx: GraphQLContext,
  ): Promise<CapStanding[]> {
    if (!Number.isFinite(fraction) || fraction < 0 || fraction > 10) throw new GatewayError('bad_request', 'fraction must be from 0 to 10.', 'fraction');
    return (await ctx.services.aggregates.nearCap(fraction, checkCount('first', first, 200))).map((s) => ({
      customerId: s.customerId,
      spend: picoToDollars(s.spendPico),
      maxBudget: picoToDollars(s.maxBudgetPico),
      budgetId: s.budgetId,
      used: s.maxBudgetPico === 0n ? 1 : Number(s.spendPico) / Number(s.maxBudgetPico),
    }));
  }
}

@Resolver()
export class ConsoleResolver {
  @Query(() => [RefusedRequest], { description: 'Refused requests, newest first (kept 30 days; one row per customer × model × reason × minute).' })
  async refusedRequests(
    @Arg('customerId', () => ID, { nullable: true }) customerId: string | null,
    @Arg('from', () => GraphQLISODateTime, { nullable: true }) from: Date | null,
    @Arg('to', () => GraphQLISODateTime, { nullable: true }) to: Date | null,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Ctx() ctx: GraphQLContext,
  ): Promise<RefusedRequest[]> {
    parseDate('from', from);
    parseDate('to', to);
    return ctx.services.refusals.list({ customerId, from, to, first: checkCount('first', first, 1000) });
  }

  @Query(() => [BudgetAlert], { description: "A customer's budget alerts from the database, newest first." })
  async budgetAlerts(@Arg('customerId', () => ID) customerId: string, @Arg('first', () => Int, { defaultValue: 50 }) first: number, @Ctx() ctx: GraphQLContext): Promise<BudgetAlert[]> {
    return (await ctx.services.history.alerts(customerId, checkCount('first', first, 500))).map(toBudgetAlert);
  }

  @Query(() => [CustomerAuditEntry], { description: 'Changes made to a customer, newest first.' })
  async customerAudit(@Arg('customerId', () => ID) customerId: string, @Arg('first', () => Int, { defaultValue: 50 }) first: number, @Ctx() ctx: GraphQLContext): Promise<CustomerAuditEntry[]> {
    return (await ctx.services.history.audit(customerId, checkCount('first', first, 500))).map((entry) => ({
      id: entry.id,
      action: entry.action,
      actor: entry.actor,
      changes: entry.changes,
      at: entry.createdAt,
    }));
  }

  @Query(() => [ApiKeyDetails], { description: 'Every virtual key with when it was created and last used, newest first.' })
  apiKeyList(@Ctx() ctx: GraphQLContext): Promise<ApiKeyDetails[]> {
    return ctx.services.keys.listDetailed();
  }
}
