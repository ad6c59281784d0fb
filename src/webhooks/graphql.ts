/**
 * @module GraphQL for webhook deliveries: list them by status (failed by default) and retry
 * failed ones. A thin adapter over `WebhookService`.
 */
import { Arg, Ctx, Field, ID, Int, Mutation, ObjectType, Query, Resolver, registerEnumType } from 'type-graphql';
import { GraphQLISODateTime } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { GatewayError } from '../shared/errors';
import type { GraphQLContext } from '../control-plane/graphql/context';
import { PageInfo } from '../control-plane/graphql/types';
import type { DeliveryRow } from './outbox';

export enum WebhookDeliveryStatus {
  pending = 'pending',
  delivered = 'delivered',
  failed = 'failed',
}
registerEnumType(WebhookDeliveryStatus, { name: 'WebhookDeliveryStatus', description: 'pending (being retried), delivered, or failed (retry time used up; retryable).' });

@ObjectType({ description: 'One webhook event to one WEBHOOK_URL, and how its delivery went.' })
export class WebhookDelivery {
  @Field(() => ID, { description: 'The event id, sent as the webhook-id header; the same for every URL.' }) eventId!: string;
  @Field(() => String, { description: 'spend_tracked, soft_budget_crossed, threshold_crossed or budget_crossed.' }) event!: string;
  @Field(() => String, { nullable: true }) customerId!: string | null;
  @Field(() => String) url!: string;
  @Field(() => WebhookDeliveryStatus) status!: WebhookDeliveryStatus;
  @Field(() => Int) attempts!: number;
  @Field(() => GraphQLISODateTime, { nullable: true, description: 'When the next attempt is due (pending only).' }) nextAttemptAt!: Date | null;
  @Field(() => GraphQLISODateTime, { description: 'Retries stop at this time and the delivery becomes failed.' }) giveUpAt!: Date;
  @Field(() => GraphQLISODateTime, { nullable: true }) lastAttemptAt!: Date | null;
  @Field(() => Int, { nullable: true, description: 'HTTP status of the last attempt; null when no answer came.' }) lastStatusCode!: number | null;
  @Field(() => String, { nullable: true }) lastError!: string | null;
  @Field(() => GraphQLISODateTime, { nullable: true }) deliveredAt!: Date | null;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  @Field(() => GraphQLJSONObject, { description: 'The JSON body sent.' }) payload!: Record<string, unknown>;
}

@ObjectType()
export class WebhookDeliveryConnection {
  @Field(() => [WebhookDelivery]) nodes!: WebhookDelivery[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

function toDelivery(row: DeliveryRow): WebhookDelivery {
  return Object.assign(new WebhookDelivery(), {
    eventId: row.eventId,
    event: row.eventType,
    customerId: row.customerId,
    url: row.url,
    status: row.status as WebhookDeliveryStatus,
    attempts: row.attempts,
    nextAttemptAt: row.nextAttemptAt,
    giveUpAt: row.giveUpAt,
    lastAttemptAt: row.lastAttemptAt,
    lastStatusCode: row.lastStatusCode,
    lastError: row.lastError,
    deliveredAt: row.deliveredAt,
    createdAt: row.createdAt,
    payload: JSON.parse(row.body) as Record<string, unknown>,
  });
}

@Resolver(() => WebhookDelivery)
export class WebhookResolver {
  @Query(() => WebhookDeliveryConnection, { description: 'Webhook deliveries in one status, newest first (default: failed ones).' })
  async webhookDeliveries(
    @Arg('status', () => WebhookDeliveryStatus, { defaultValue: WebhookDeliveryStatus.failed }) status: WebhookDeliveryStatus,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<WebhookDeliveryConnection> {
    if (!Number.isInteger(first) || first < 1 || first > 1000) throw new GatewayError('bad_request', 'first must be from 1 to 1000.', 'first');
    // type-graphql passes undefined (not null) for an omitted nullable argument.
    const page = await ctx.services.webhooks.deliveries(status, first, after ?? null);
    return { nodes: page.rows.map(toDelivery), pageInfo: { hasNextPage: page.hasMore, endCursor: page.endCursor } };
  }

  @Mutation(() => [WebhookDelivery], { description: "Retries an event's failed deliveries (or only the one to url) now; returns all its deliveries." })
  async retryWebhookDelivery(
    @Arg('eventId', () => ID) eventId: string,
    @Arg('url', () => String, { nullable: true }) url: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<WebhookDelivery[]> {
    return (await ctx.services.webhooks.retry(eventId, url ?? null)).map(toDelivery);
  }

  @Mutation(() => Int, { description: 'Retries every failed webhook delivery now; returns how many.' })
  retryFailedWebhookDeliveries(@Ctx() ctx: GraphQLContext): Promise<number> {
    return ctx.services.webhooks.retryAllFailed();
  }
}
