/**
 * @module GraphQL object and input types. Money is Float dollars at this edge (the services
 * keep exact pico-USD); a budget's `id` is its `budget_id`; names are camelCase.
 */
import { Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { GraphQLISODateTime } from 'type-graphql';

@ObjectType({ description: 'A budget: limits shared by every customer linked to it (a pricing tier) or private to one.' })
export class Budget {
  @Field(() => ID) id!: string;
  @Field(() => Float, { nullable: true, description: 'Hard cap in USD per period; requests are refused at spend >= maxBudget.' }) maxBudget!: number | null;
  @Field(() => Float, { nullable: true, description: 'Alert-only threshold in USD.' }) softBudget!: number | null;
  @Field(() => Int, { nullable: true }) rpmLimit!: number | null;
  @Field(() => Int, { nullable: true }) tpmLimit!: number | null;
  @Field(() => Int, { nullable: true }) maxParallelRequests!: number | null;
  @Field(() => String, { nullable: true, description: 'Period length: Ns, Nm, Nh, Nd, Nw or Nmo.' }) budgetDuration!: string | null;
  @Field(() => GraphQLISODateTime, { nullable: true, description: 'When the current period ends and spend resets.' }) resetAt!: Date | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: '{model: {max_budget, budget_duration}}' }) modelMaxBudget!: Record<string, unknown> | null;
  // customerCount is a field resolver (BudgetResolver): counted only when asked for.
  @Field(() => Float, { nullable: true, description: "Customers are charged cost × priceMultiplier (models without a modelPrices entry); null: 1." }) priceMultiplier!: number | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: "The tier's own prices, dollars per token: {model: {input_cost_per_token, output_cost_per_token, cache_read_input_token_cost, cache_creation_input_token_cost}}" }) modelPrices!: Record<string, unknown> | null;
  @Field(() => Boolean, { description: 'Its customers are admitted only while their prepaid credits cover a request.' }) prepaid!: boolean;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  @Field(() => GraphQLISODateTime) updatedAt!: Date;
}

@ObjectType({ description: 'A customer (end user) of the application calling the gateway.' })
export class Customer {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true }) alias!: string | null;
  @Field(() => Float, { description: 'Spend in USD in the current period of the budget in force.' }) spend!: number;
  @Field(() => Boolean) blocked!: boolean;
  @Field(() => String, { nullable: true, description: "The customer's own budget id (null: the default budget applies)." }) budgetId!: string | null;
  @Field(() => Budget, { nullable: true, description: 'The budget in force: its own, else the default budget.' }) budget!: Budget | null;
  @Field(() => String, { nullable: true }) allowedModelRegion!: string | null;
  @Field(() => String, { nullable: true }) defaultModel!: string | null;
  @Field(() => String, { description: 'blocked, over_budget, rate_limited or active (see CustomerStatus).' }) status!: string;
  @Field(() => String, { nullable: true, description: "The customer's Stripe id, where the Stripe usage exporter sends its meter events." }) stripeCustomerId!: string | null;
  @Field(() => Boolean, { description: 'Served only from prepaid credits: it says so, or its budget does.' }) prepaid!: boolean;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
}

@ObjectType()
export class PageInfo {
  @Field(() => Boolean) hasNextPage!: boolean;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ObjectType()
export class CustomerConnection {
  @Field(() => [Customer]) nodes!: Customer[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
  @Field(() => Int, { description: 'Customers matching the search, counted exactly up to 10000 (then 10000); only counted when asked for.' })
  totalCount!: number;
  /** The search the page was listed with (not exposed): what `totalCount` counts. */
  search!: string | null;
}

@ObjectType({ description: 'One metered request, as recorded in the ledger.' })
export class SpendLog {
  @Field(() => ID) requestId!: string;
  @Field(() => String, { nullable: true }) customerId!: string | null;
  @Field(() => String, { nullable: true }) keyAlias!: string | null;
  @Field(() => String) model!: string;
  @Field(() => String) provider!: string;
  @Field(() => String) endpoint!: string;
  @Field(() => Int) promptTokens!: number;
  @Field(() => Int) completionTokens!: number;
  @Field(() => Int) cachedPromptTokens!: number;
  @Field(() => Float, { description: 'What the provider bills for this request (USD).' }) cost!: number;
  @Field(() => Float, { description: 'What the customer is charged for it (USD): its tier price; equals cost without one.' }) charge!: number;
  @Field(() => String, { description: 'provider, computed or estimated' }) costSource!: string;
  @Field(() => String) status!: string;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
}

@ObjectType()
export class SpendLogConnection {
  @Field(() => [SpendLog]) nodes!: SpendLog[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType({ description: "A customer's spend in one budget period." })
export class SpendPeriod {
  @Field(() => GraphQLISODateTime) periodStart!: Date;
  @Field(() => Float) spend!: number;
  @Field(() => Int) requests!: number;
  @Field(() => Int) promptTokens!: number;
  @Field(() => Int) completionTokens!: number;
}

@ObjectType()
export class SpendReportRow {
  @Field(() => String, { description: 'Customer id, model name or day (YYYY-MM-DD), per groupBy.' }) key!: string;
  @Field(() => Float, { description: 'What customers were charged (= charge).' }) spend!: number;
  @Field(() => Float, { description: 'Provider cost (USD).' }) cost!: number;
  @Field(() => Float, { description: 'Customer charge (USD).' }) charge!: number;
  @Field(() => Float, { description: 'charge − cost (USD).' }) margin!: number;
  @Field(() => Int) requests!: number;
  @Field(() => Int) promptTokens!: number;
  @Field(() => Int) completionTokens!: number;
}

@ObjectType()
export class ApiKey {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true }) alias!: string | null;
  @Field(() => String) scope!: string;
  @Field(() => Boolean) revoked!: boolean;
  @Field(() => ID, { nullable: true, description: "The customer a bound key always acts for; it can read only that customer's usage (viewer)." }) customerId!: string | null;
  @Field(() => Int, { nullable: true, description: 'Requests per minute of this key (bound keys), on top of its customer’s limits.' }) rpmLimit!: number | null;
  @Field(() => Float, { nullable: true, description: 'Lifetime spend cap of this key in USD (bound keys), on top of its customer’s budget.' }) maxBudget!: number | null;
}

@ObjectType()
export class CreatedApiKey {
  @Field(() => String, { description: 'The key itself; shown only once.' }) key!: string;
  @Field(() => ApiKey) apiKey!: ApiKey;
}

@InputType({ description: 'Budget limits. Omit a field to leave it unchanged; null clears it.' })
export class BudgetInput {
  @Field(() => Float, { nullable: true }) maxBudget?: number | null;
  @Field(() => Float, { nullable: true }) softBudget?: number | null;
  @Field(() => Int, { nullable: true }) rpmLimit?: number | null;
  @Field(() => Int, { nullable: true }) tpmLimit?: number | null;
  @Field(() => Int, { nullable: true }) maxParallelRequests?: number | null;
  @Field(() => String, { nullable: true }) budgetDuration?: string | null;
  @Field(() => GraphQLISODateTime, { nullable: true }) resetAt?: Date | null;
  @Field(() => GraphQLJSONObject, { nullable: true }) modelMaxBudget?: Record<string, unknown> | null;
  @Field(() => Float, { nullable: true, description: 'e.g. 1.25: customers are charged 125% of cost.' }) priceMultiplier?: number | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: '{model: {input_cost_per_token, output_cost_per_token, …}} in dollars per token.' }) modelPrices?: Record<string, unknown> | null;
  @Field(() => Boolean, { nullable: true, description: 'Customers on this budget are served only from prepaid credits.' }) prepaid?: boolean | null;
}

@InputType()
export class CreateBudgetInput extends BudgetInput {
  @Field(() => ID, { nullable: true, description: 'Generated when omitted.' }) id?: string | null;
}

@InputType()
export class CustomerFieldsInput {
  @Field(() => String, { nullable: true }) alias?: string | null;
  @Field(() => Boolean, { nullable: true }) blocked?: boolean | null;
  @Field(() => String, { nullable: true, description: 'Link to an existing budget (pricing tier).' }) budgetId?: string | null;
  @Field(() => String, { nullable: true }) allowedModelRegion?: string | null;
  @Field(() => String, { nullable: true }) defaultModel?: string | null;
  @Field(() => String, { nullable: true, description: "The customer's Stripe id (cus_…) for the Stripe usage exporter; null clears it." }) stripeCustomerId?: string | null;
  @Field(() => Boolean, { nullable: true, description: 'Serve it only from prepaid credits (also true when its budget is prepaid).' }) prepaid?: boolean | null;
  @Field(() => BudgetInput, { nullable: true, description: 'Inline limits: a private budget for this customer.' }) budget?: BudgetInput | null;
}

@InputType()
export class CreateCustomerInput extends CustomerFieldsInput {
  @Field(() => ID) id!: string;
}
