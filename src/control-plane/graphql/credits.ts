/**
 * @module GraphQL mirrors of the credit routes: `customerCredits` (and `Customer.credits`),
 * `grantCredits`, `voidCredits`. They call the same CreditService as REST and the console.
 */
import { Arg, Ctx, Field, Float, FieldResolver, GraphQLISODateTime, ID, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { picoToDecimalString, picoToDollars } from '../../shared/money';
import { CAMEL_CREDIT_NAMES, type CreditBalance, type GrantView } from '../../services/credits';
import type { GrantRecord } from '../../governance/credits';
import type { GraphQLContext } from './context';
import { Customer } from './types';

@ObjectType({ description: 'One credit grant of a prepaid customer.' })
export class CreditGrant {
  @Field(() => String, { description: 'Its idempotency key: the same reference grants once.' }) reference!: string;
  @Field(() => Float, { description: 'USD granted.' }) amount!: number;
  @Field(() => String, { description: 'paid or promotional.' }) kind!: string;
  @Field(() => GraphQLISODateTime, { nullable: true }) expiresAt!: Date | null;
  @Field(() => GraphQLISODateTime, { nullable: true }) voidedAt!: Date | null;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  @Field(() => String, { nullable: true }) createdBy!: string | null;
  @Field(() => Float, { nullable: true, description: 'USD of it consumed (grants are used earliest-expiring first).' }) consumed!: number | null;
  @Field(() => Float, { nullable: true, description: 'USD of it still spendable (0 once expired or voided).' }) remaining!: number | null;
  @Field(() => String, { nullable: true, description: 'active, exhausted, expired or voided.' }) status!: string | null;
}

@ObjectType({ description: "A customer's prepaid credits." })
export class CustomerCredits {
  @Field(() => ID) customerId!: string;
  @Field(() => Boolean, { description: 'Whether it is admitted only while its balance covers a request (it, or its budget, says prepaid).' }) prepaid!: boolean;
  @Field(() => Float, { description: 'USD its grants make usable: active grants, plus what expired or voided ones had consumed.' }) granted!: number;
  @Field(() => Float, { description: 'USD consumed.' }) consumed!: number;
  @Field(() => Float, { description: 'granted − consumed (USD).' }) balance!: number;
  @Field(() => String, { description: 'The balance as an exact decimal string of dollars.' }) balanceExact!: string;
  @Field(() => [CreditGrant]) grants!: CreditGrant[];
}

@ObjectType()
export class CreditGrantResult {
  @Field(() => Boolean, { description: 'false: the reference had granted already; nothing new was granted.' }) created!: boolean;
  @Field(() => CreditGrant) grant!: CreditGrant;
  @Field(() => CustomerCredits) credits!: CustomerCredits;
}

@ObjectType()
export class CreditVoidResult {
  @Field(() => Boolean, { description: 'false: it was voided already.' }) voided!: boolean;
  @Field(() => CreditGrant) grant!: CreditGrant;
  @Field(() => CustomerCredits) credits!: CustomerCredits;
}

function toGrant(grant: GrantRecord & Partial<Pick<GrantView, 'consumed' | 'remaining' | 'status'>>): CreditGrant {
  return Object.assign(new CreditGrant(), {
    reference: grant.reference,
    amount: picoToDollars(grant.amount),
    kind: grant.kind,
    expiresAt: grant.expiresAt,
    voidedAt: grant.voidedAt,
    createdAt: grant.createdAt,
    createdBy: grant.createdBy,
    consumed: grant.consumed === undefined ? null : picoToDollars(grant.consumed),
    remaining: grant.remaining === undefined ? null : picoToDollars(grant.remaining),
    status: grant.status ?? null,
  });
}

export function toCredits(balance: CreditBalance): CustomerCredits {
  return Object.assign(new CustomerCredits(), {
    customerId: balance.customerId,
    prepaid: balance.prepaid,
    granted: picoToDollars(balance.granted),
    consumed: picoToDollars(balance.consumed),
    balance: picoToDollars(balance.balance),
    balanceExact: picoToDecimalString(balance.balance),
    grants: balance.grants.map(toGrant),
  });
}

function actor(ctx: GraphQLContext): string {
  return ctx.principal.kind === 'virtual' ? (ctx.principal.alias ?? ctx.principal.keyId ?? 'key') : 'litellm_proxy_admin_name';
}

@Resolver()
export class CreditResolver {
  @Query(() => CustomerCredits, { description: "A customer's credit balance and grants." })
  async customerCredits(@Arg('customerId', () => ID) customerId: string, @Ctx() ctx: GraphQLContext): Promise<CustomerCredits> {
    return toCredits(await ctx.services.credits.balance(customerId, 'customerId'));
  }

  @Mutation(() => CreditGrantResult, { description: 'Grants credits (USD). The same reference twice grants once; with a different amount it is refused (409).' })
  async grantCredits(
    @Arg('customerId', () => ID) customerId: string,
    @Arg('amount', () => Float) amount: number,
    @Arg('reference', () => String) reference: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('kind', () => String, { nullable: true, description: 'paid (default) or promotional.' }) kind?: string | null,
    @Arg('expiresAt', () => GraphQLISODateTime, { nullable: true }) expiresAt?: Date | null,
  ): Promise<CreditGrantResult> {
    const result = await ctx.services.credits.grant({ customerId, amount, reference, kind: kind ?? undefined, expiresAt: expiresAt ?? undefined }, actor(ctx), CAMEL_CREDIT_NAMES);
    return { created: result.created, grant: toGrant(result.grant), credits: toCredits(result.balance) };
  }

  @Mutation(() => CreditVoidResult, { description: 'Voids a grant by reference: its unconsumed remainder leaves the balance; what it paid for stays consumed.' })
  async voidCredits(@Arg('customerId', () => ID) customerId: string, @Arg('reference', () => String) reference: string, @Ctx() ctx: GraphQLContext): Promise<CreditVoidResult> {
    const result = await ctx.services.credits.void({ customerId, reference }, actor(ctx), CAMEL_CREDIT_NAMES);
    return { voided: result.voided, grant: toGrant(result.grant), credits: toCredits(result.balance) };
  }
}

@Resolver(() => Customer)
export class CustomerCreditsResolver {
  @FieldResolver(() => CustomerCredits, { description: 'Its prepaid credits (read only when asked for).' })
  async credits(@Root() customer: Customer, @Ctx() ctx: GraphQLContext): Promise<CustomerCredits> {
    return toCredits(await ctx.services.credits.balance(customer.id, 'id'));
  }
}
