/**
 * @module GraphQL for usage exports: each exporter's backlog and lag, exports by status (the
 * dead-letter list by default), and retrying failed ones. A thin adapter over ExporterService.
 */
import { Arg, Ctx, Field, Float, ID, Int, Mutation, ObjectType, Query, Resolver, registerEnumType } from 'type-graphql';
import { GraphQLISODateTime } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import type { GraphQLContext } from '../control-plane/graphql/context';
import type { ExportRow } from './outbox';

export enum UsageExportStatus {
  pending = 'pending',
  delivered = 'delivered',
  failed = 'failed',
}
registerEnumType(UsageExportStatus, { name: 'UsageExportStatus', description: 'pending (being retried), delivered, or failed (retry time used up: the dead-letter list; retryable).' });

@ObjectType({ description: 'One metered request sent (or to send) to one billing exporter.' })
export class UsageExport {
  @Field(() => String, { description: 'The exporter name (tollgate.exporters[].name).' }) exporter!: string;
  @Field(() => ID, { description: 'The request id: the Stripe identifier / CloudEvent id, so a retry never bills twice.' }) requestId!: string;
  @Field(() => String) customerId!: string;
  @Field(() => UsageExportStatus) status!: UsageExportStatus;
  @Field(() => Int) attempts!: number;
  @Field(() => GraphQLISODateTime, { nullable: true }) nextAttemptAt!: Date | null;
  @Field(() => GraphQLISODateTime) giveUpAt!: Date;
  @Field(() => GraphQLISODateTime, { nullable: true }) lastAttemptAt!: Date | null;
  @Field(() => String, { nullable: true }) lastError!: string | null;
  @Field(() => GraphQLISODateTime, { nullable: true }) deliveredAt!: Date | null;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  @Field(() => GraphQLJSONObject, { description: 'The event sent (for Stripe, without the stripe_customer_id, looked up at each attempt).' }) event!: Record<string, unknown>;
}

@ObjectType()
export class UsageExportPage {
  @Field(() => [UsageExport]) nodes!: UsageExport[];
  @Field(() => Boolean) hasMore!: boolean;
}

@ObjectType({ description: "A configured exporter and its backlog." })
export class UsageExporter {
  @Field(() => String) name!: string;
  @Field(() => String, { description: 'stripe or openmeter.' }) type!: string;
  @Field(() => Int) pending!: number;
  @Field(() => Int) failed!: number;
  @Field(() => Float, { description: 'Seconds since the oldest export not yet delivered was metered (0: none).' }) lagSeconds!: number;
}

function toUsageExport(row: ExportRow): UsageExport {
  return Object.assign(new UsageExport(), {
    ...row,
    status: row.status as UsageExportStatus,
    event: JSON.parse(row.body) as Record<string, unknown>,
  });
}

@Resolver(() => UsageExport)
export class UsageExportResolver {
  @Query(() => [UsageExporter], { description: 'The exporters in tollgate.exporters, with their backlog and lag.' })
  async usageExporters(@Ctx() ctx: GraphQLContext): Promise<UsageExporter[]> {
    const backlog = await ctx.services.exporters.backlog();
    return ctx.services.exporters.exporters.map((settings) => {
      const row = backlog.find((b) => b.exporter === settings.name)!;
      return Object.assign(new UsageExporter(), { name: settings.name, type: settings.type, pending: row.pending, failed: row.failed, lagSeconds: row.lagSeconds });
    });
  }

  @Query(() => UsageExportPage, { description: 'Usage exports in one status, oldest first (default: failed, the dead-letter list).' })
  async usageExports(
    @Arg('status', () => UsageExportStatus, { defaultValue: UsageExportStatus.failed }) status: UsageExportStatus,
    @Arg('exporter', () => String, { nullable: true }) exporter: string | null,
    @Arg('first', () => Int, { defaultValue: 100 }) first: number,
    @Arg('offset', () => Int, { defaultValue: 0 }) offset: number,
    @Ctx() ctx: GraphQLContext,
  ): Promise<UsageExportPage> {
    const page = await ctx.services.exporters.list(status, exporter ?? null, first, offset);
    return { nodes: page.rows.map(toUsageExport), hasMore: page.hasMore };
  }

  @Mutation(() => Int, { description: 'Retries failed usage exports now (of one exporter and/or one request, or all); returns how many.' })
  retryUsageExports(
    @Arg('exporter', () => String, { nullable: true }) exporter: string | null,
    @Arg('requestId', () => ID, { nullable: true }) requestId: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<number> {
    return ctx.services.exporters.retry(exporter ?? null, requestId ?? null);
  }
}
