/**
 * @module Builds the GraphQL schema from the type-graphql resolvers, and prints it the way the
 * committed `schema.graphql` is written (sorted, so diffs are stable; a test fails on drift).
 */
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchemaSync, type NonEmptyArray } from 'type-graphql';
import { enforceTimeBudget } from './limits';
import { RESOLVERS } from './resolvers';
import { BUS_ONLY_PUBSUB } from './subscriptions';

let cached: GraphQLSchema | null = null;

export function buildGatewaySchema(extraResolvers: Function[] = []): GraphQLSchema {
  if (cached && !extraResolvers.length) return cached;
  const schema = buildSchemaSync({
    resolvers: [...RESOLVERS, ...extraResolvers] as unknown as NonEmptyArray<Function>,
    validate: false,
    pubSub: BUS_ONLY_PUBSUB,
    globalMiddlewares: [enforceTimeBudget],
  });
  if (!extraResolvers.length) cached = schema;
  return schema;
}

export function printGatewaySchema(schema: GraphQLSchema = buildGatewaySchema()): string {
  return printSchema(lexicographicSortSchema(schema)) + '\n';
}
