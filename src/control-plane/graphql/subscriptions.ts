/**
 * @module Live subscriptions over graphql-ws: `spendUpdated` (each metered request) and
 * `budgetEvent` (customer budget alerts). They adapt the event buses, the one publish
 * interface (in memory now, Redis pub/sub later), through a bounded queue per subscriber.
 */
import { GraphQLError } from 'graphql';
import { Arg, Field, Float, ID, Int, ObjectType, registerEnumType, Resolver, Root, Subscription, type PubSub, type SubscribeResolverData } from 'type-graphql';
import { GraphQLISODateTime } from 'type-graphql';
import type { BudgetEventBus, SpendEventBus } from '../../ledger/events';
import type { BudgetEvent, SpendEvent } from '../../ledger/types';
import { picoToDollars } from '../../shared/money';
import type { GraphQLContext } from './context';
import type { OpenSubscriptions } from './open-subscriptions';
import { FellBehind, SubscriberQueue, SUBSCRIBER_QUEUE_LIMIT } from './subscriber-queue';

/** The buses subscriptions read from, handed to the graphql-ws context by the control plane. */
export interface LiveEvents {
  spend: SpendEventBus;
  budget: BudgetEventBus;
  /** Undelivered events one subscriber may hold before it is cut off. */
  subscriberQueueLimit?: number;
  /** Counts the subscriptions open (for metrics). */
  open?: OpenSubscriptions;
}

/** The bus subscription of one GraphQL subscriber, counted when the live events count them. */
function listenTo<E>(live: LiveEvents, bus: { subscribe(listener: (event: E) => void): () => void }) {
  const subscribe = (listener: (event: E) => void) => bus.subscribe(listener);
  return live.open ? live.open.track(subscribe) : subscribe;
}

/**
 * type-graphql refuses to build a schema with subscriptions unless it is given a PubSub, even
 * when every subscription brings its own `subscribe` (as here: the buses are the one publish
 * interface). This one exists only to satisfy that check and says so if anything uses topics.
 */
export const BUS_ONLY_PUBSUB: PubSub = {
  publish(topic: string) {
    throw new Error(`Publish on the event buses (SpendEventBus, BudgetEventBus), not on a topic (${topic}).`);
  },
  subscribe(topic: string): AsyncIterable<unknown> {
    throw new Error(`Subscriptions read the event buses; there is no topic ${topic}.`);
  },
};

export enum BudgetEventType {
  soft_budget_crossed = 'soft_budget_crossed',
  threshold_crossed = 'threshold_crossed',
  budget_crossed = 'budget_crossed',
  credits_low = 'credits_low',
  credits_exhausted = 'credits_exhausted',
}
registerEnumType(BudgetEventType, { name: 'BudgetEventType' });

@ObjectType({ description: "One metered request of a customer, with the customer's period spend after it." })
export class SpendUpdate {
  @Field(() => ID) customerId!: string;
  @Field(() => Float, { description: "This request's provider cost in USD." }) cost!: number;
  @Field(() => Float, { description: "What the customer is charged for this request in USD (its tier's price; = cost without one)." }) charge!: number;
  @Field(() => Float, { description: "The customer's spend in USD in the current budget period, after this request." }) spend!: number;
  @Field(() => Float, { nullable: true, description: 'The max budget in force for this request, in USD.' }) maxBudget!: number | null;
  @Field(() => String, { nullable: true, description: 'The budget in force for this request.' }) budgetId!: string | null;
  @Field(() => String) model!: string;
  @Field(() => Int) promptTokens!: number;
  @Field(() => Int) completionTokens!: number;
  @Field(() => ID) requestId!: string;
  @Field(() => GraphQLISODateTime) at!: Date;
}

@ObjectType('BudgetEvent', { description: 'A customer budget alert, sent at most once per threshold per budget period.' })
export class BudgetAlert {
  @Field(() => ID, { description: 'Stable event id (also the webhook event id).' }) id!: string;
  @Field(() => BudgetEventType) type!: BudgetEventType;
  @Field(() => ID) customerId!: string;
  @Field(() => String, { nullable: true }) budgetId!: string | null;
  @Field(() => Float, { nullable: true, description: 'Fraction of maxBudget for threshold_crossed, 1 for budget_crossed, null for the soft budget.' })
  threshold!: number | null;
  @Field(() => Float, { description: "The customer's period spend in USD when the alert fired." }) spend!: number;
  @Field(() => Float, { nullable: true }) maxBudget!: number | null;
  @Field(() => Float, { nullable: true }) softBudget!: number | null;
  @Field(() => GraphQLISODateTime) periodStart!: Date;
  @Field(() => ID) requestId!: string;
  @Field(() => GraphQLISODateTime) at!: Date;
}

interface CustomerFilterArgs {
  customerId?: string | null;
}

function liveEvents(context: GraphQLContext): LiveEvents {
  if (!context.live) throw new GraphQLError('Subscriptions are served over graphql-ws (WebSocket) at /graphql.');
  return context.live;
}

function fellBehind(marker: FellBehind): GraphQLError {
  return new GraphQLError(
    `This subscriber fell more than ${marker.limit} events behind and was cut off; read what it missed with spendLogs and subscribe again.`,
    { extensions: { code: 'SUBSCRIBER_TOO_SLOW' } },
  );
}

function dollarsOrNull(pico: bigint | null): number | null {
  return pico === null ? null : picoToDollars(pico);
}

export function toSpendUpdate(event: SpendEvent): SpendUpdate {
  const { record } = event;
  return Object.assign(new SpendUpdate(), {
    customerId: record.customerId!,
    cost: picoToDollars(record.costPico),
    charge: picoToDollars(record.chargePico),
    spend: picoToDollars(event.periodSpendPico),
    maxBudget: dollarsOrNull(event.maxBudgetPico),
    budgetId: event.budgetId,
    model: record.model,
    promptTokens: record.promptTokens,
    completionTokens: record.completionTokens,
    requestId: record.requestId,
    at: new Date(record.createdAtMs),
  });
}

export function toBudgetAlert(event: BudgetEvent): BudgetAlert {
  return Object.assign(new BudgetAlert(), {
    id: event.eventId,
    type: event.type as BudgetEventType,
    customerId: event.customerId,
    budgetId: event.budgetId,
    threshold: event.threshold,
    spend: picoToDollars(event.spendPico),
    maxBudget: dollarsOrNull(event.maxBudgetPico),
    softBudget: dollarsOrNull(event.softBudgetPico),
    periodStart: new Date(event.periodStartMs),
    requestId: event.requestId,
    at: new Date(event.atMs),
  });
}

@Resolver()
export class SubscriptionResolver {
  @Subscription(() => SpendUpdate, {
    description: "Each metered request of one customer, or of every customer when customerId is omitted (requests without a customer are not sent). Needs an admin key in the graphql-ws connectionParams: { authorization: 'Bearer <key>' }.",
    subscribe: ({ args, context }: SubscribeResolverData<unknown, CustomerFilterArgs, GraphQLContext>) => {
      const live = liveEvents(context);
      const customerId = args.customerId ?? null;
      return new SubscriberQueue<SpendEvent>(
        listenTo<SpendEvent>(live, live.spend),
        live.subscriberQueueLimit ?? SUBSCRIBER_QUEUE_LIMIT,
        (event) => event.record.customerId !== null && (customerId === null || event.record.customerId === customerId),
      );
    },
  })
  spendUpdated(
    @Root() event: SpendEvent | FellBehind,
    @Arg('customerId', () => ID, { nullable: true, description: 'Omit for all customers.' }) _customerId: string | null,
  ): SpendUpdate {
    if (event instanceof FellBehind) throw fellBehind(event);
    return toSpendUpdate(event);
  }

  @Subscription(() => BudgetAlert, {
    description: 'Budget alerts (soft budget, thresholds, budget crossed) of one customer, or of every customer when customerId is omitted.',
    subscribe: ({ args, context }: SubscribeResolverData<unknown, CustomerFilterArgs, GraphQLContext>) => {
      const live = liveEvents(context);
      const customerId = args.customerId ?? null;
      return new SubscriberQueue<BudgetEvent>(
        listenTo<BudgetEvent>(live, live.budget),
        live.subscriberQueueLimit ?? SUBSCRIBER_QUEUE_LIMIT,
        (event) => customerId === null || event.customerId === customerId,
      );
    },
  })
  budgetEvent(
    @Root() event: BudgetEvent | FellBehind,
    @Arg('customerId', () => ID, { nullable: true, description: 'Omit for all customers.' }) _customerId: string | null,
  ): BudgetAlert {
    if (event instanceof FellBehind) throw fellBehind(event);
    return toBudgetAlert(event);
  }
}
