/**
 * @module GraphQL `viewer`: a bound key's own customer (usage, limits, in charges only). In the
 * admin schema it is null for admin keys; a bound key reaches a schema with `viewer` alone.
 */
import { Arg, Ctx, Field, Float, ID, Int, ObjectType, Query, Resolver } from 'type-graphql';
import { GraphQLISODateTime } from 'type-graphql';
import { buildSchemaSync } from 'type-graphql';
import type { GraphQLSchema } from 'graphql';
import { picoToDollars } from '../../shared/money';
import type { ViewerView } from '../../services/viewer';
import type { GraphQLContext } from '../graphql/context';

const dollarsOrNull = (pico: bigint | null) => (pico === null ? null : picoToDollars(pico));

@ObjectType({ description: "One day of the viewer's usage." })
export class ViewerUsageDay {
  @Field(() => String, { description: 'YYYY-MM-DD in the gateway time zone.' }) day!: string;
  @Field(() => Int) requests!: number;
  @Field(() => Int) promptTokens!: number;
  @Field(() => Int) completionTokens!: number;
  @Field(() => Float, { description: 'Charged that day (USD).' }) spend!: number;
}

@ObjectType({ description: 'The key the viewer calls with.' })
export class ViewerKey {
  @Field(() => String, { nullable: true }) alias!: string | null;
  @Field(() => Int, { nullable: true }) rpmLimit!: number | null;
  @Field(() => Float, { nullable: true }) maxBudget!: number | null;
  @Field(() => Float, { description: 'Lifetime charges made with this key (USD).' }) spend!: number;
}

@ObjectType({ description: "A prepaid customer's credits, in USD." })
export class ViewerCredits {
  @Field(() => Float, { description: 'What its grants make usable.' }) granted!: number;
  @Field(() => Float) consumed!: number;
  @Field(() => Float, { description: 'granted − consumed.' }) balance!: number;
}

@ObjectType({ description: "A bound key's own customer: what a reseller shows on its usage page." })
export class Viewer {
  @Field(() => ID) customerId!: string;
  @Field(() => String, { nullable: true }) alias!: string | null;
  @Field(() => Float, { description: 'Charged in the current budget period (USD).' }) spend!: number;
  @Field(() => Float, { nullable: true }) maxBudget!: number | null;
  @Field(() => Float, { nullable: true }) budgetRemaining!: number | null;
  @Field(() => GraphQLISODateTime) periodStart!: Date;
  @Field(() => GraphQLISODateTime, { nullable: true }) resetAt!: Date | null;
  @Field(() => ViewerKey) key!: ViewerKey;
  @Field(() => [ViewerUsageDay], { description: 'Per day of the current period, or of from/to.' }) usage!: ViewerUsageDay[];
  @Field(() => ViewerCredits, { nullable: true, description: 'Its prepaid credits (null when it is not prepaid).' }) credits!: ViewerCredits | null;
}

export function toViewer(view: ViewerView): Viewer {
  return Object.assign(new Viewer(), {
    customerId: view.customerId,
    alias: view.alias,
    spend: picoToDollars(view.spendPico),
    maxBudget: dollarsOrNull(view.maxBudgetPico),
    budgetRemaining: dollarsOrNull(view.budgetRemainingPico),
    periodStart: view.periodStart,
    resetAt: view.resetAt,
    key: { alias: view.key.alias, rpmLimit: view.key.rpmLimit, maxBudget: dollarsOrNull(view.key.maxBudgetPico), spend: picoToDollars(view.key.spendPico) },
    usage: view.usage.map((day) => ({ day: day.day, requests: day.requests, promptTokens: day.promptTokens, completionTokens: day.completionTokens, spend: picoToDollars(day.chargePico) })),
    credits: view.credits ? { granted: picoToDollars(view.credits.grantedPico), consumed: picoToDollars(view.credits.consumedPico), balance: picoToDollars(view.credits.balancePico) } : null,
  });
}

@Resolver(() => Viewer)
export class ViewerResolver {
  @Query(() => Viewer, { nullable: true, description: 'The customer of a key bound to one (null for admin keys).' })
  async viewer(
    @Arg('from', () => GraphQLISODateTime, { nullable: true }) from: Date | null,
    @Arg('to', () => GraphQLISODateTime, { nullable: true }) to: Date | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Viewer | null> {
    if (!ctx.principal.customerId) return null;
    return toViewer(await ctx.services.viewer.me(ctx.principal, { from: from ?? undefined, to: to ?? undefined }));
  }
}

let viewerSchema: GraphQLSchema | null = null;

/** The whole schema a bound key may query: `viewer` and nothing else. */
export function buildViewerSchema(): GraphQLSchema {
  viewerSchema ??= buildSchemaSync({ resolvers: [ViewerResolver], validate: false });
  return viewerSchema;
}
