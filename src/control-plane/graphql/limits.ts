/**
 * @module What one GraphQL operation may ask of the server, checked the same way over HTTP
 * and graphql-ws: tokens (at parse), depth, cost, aliases and directives (graphql-armor's
 * validation rules, which measure each fragment once, so nested spreads cost linear time),
 * and a time budget for executing it. A refused document is a 400 naming the limit.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { GraphQLError, Kind, specifiedRules, validate, visit, type DocumentNode, type GraphQLSchema, type ValidationContext, type ValidationRule } from 'graphql';
import type { MiddlewareFn } from 'type-graphql';

export interface GraphQLLimits {
  /** Nesting of fields (fragments add none); introspection's `__schema` is not counted. */
  maxDepth: number;
  /** graphql-armor's cost: 1 per scalar, 2 per object, ×1.5 per level, × a literal `first`. */
  maxCost: number;
  maxAliases: number;
  maxDirectives: number;
  /** Lexical tokens of the document; parsing stops there, before any tree is built. */
  maxTokens: number;
  /** Wall time an operation may run; fields that start later fail with OPERATION_TIME_BUDGET_EXCEEDED. */
  timeBudgetMs: number;
}

// Room for a full page of 1,000 ledger rows (cost ~30,000; the admin UI's largest query, 50
// customers with their budgets, ~3,100) and for introspection.
export const DEFAULT_GRAPHQL_LIMITS: GraphQLLimits = {
  maxDepth: 8,
  maxCost: 50_000,
  maxAliases: 30,
  maxDirectives: 50,
  maxTokens: 5_000,
  timeBudgetMs: 10_000,
};

export const TIME_BUDGET_EXCEEDED = 'OPERATION_TIME_BUDGET_EXCEEDED';

/** graphql-armor prefixes every message with "Syntax Error: "; these are limits, not syntax. */
function reportTo(context: ValidationContext | null, error: GraphQLError): void {
  context?.reportError(
    new GraphQLError(`${error.message.replace(/^Syntax Error: /, '')} See the GraphQL limits in the README.`, {
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    }),
  );
}

/** The limit rules alone (Apollo adds graphql's specified rules itself). */
export function limitRules(limits: GraphQLLimits): ValidationRule[] {
  // Reported as validation errors, never thrown: a throw from a rule would abort validation.
  const common = { exposeLimits: true, propagateOnRejection: false, onReject: [reportTo] };
  return [
    maxDepthRule({ ...common, n: limits.maxDepth, flattenFragments: true, ignoreIntrospection: true }),
    costRule(limits),
    maxAliasesRule({ ...common, n: limits.maxAliases }),
    maxDirectivesRule({ ...common, n: limits.maxDirectives }),
  ] as ValidationRule[];
}

/** graphql's specified rules plus the limits, for paths that validate themselves (graphql-ws). */
export function allValidationRules(limits: GraphQLLimits): ValidationRule[] {
  return [...specifiedRules, ...limitRules(limits)];
}

function costRule(limits: GraphQLLimits): ValidationRule {
  return costLimitRule({ exposeLimits: true, propagateOnRejection: false, onReject: [reportTo], maxCost: limits.maxCost, flattenFragments: true, ignoreIntrospection: true }) as ValidationRule;
}

/**
 * The cost again with the request's variables in place: graphql-armor multiplies by `first`
 * only when it is a literal, and the admin UI (like most clients) passes page sizes as
 * variables. Run once the document is valid, so the variables are known.
 */
export function costWithVariables(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | null | undefined, limits: GraphQLLimits): readonly GraphQLError[] {
  if (!variables) return [];
  let replaced = false;
  const inlined = visit(document, {
    Argument(node) {
      if ((node.name.value !== 'first' && node.name.value !== 'last') || node.value.kind !== Kind.VARIABLE) return undefined;
      const value = variables[node.value.name.value];
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) return undefined;
      replaced = true;
      return { ...node, value: { kind: Kind.INT, value: String(value) } };
    },
  });
  return replaced ? validate(schema, inlined, [costRule(limits)]) : [];
}

/** Apollo's side of `costWithVariables`: a 400 before execution, like the other limits. */
export function variableCostGuard(schema: GraphQLSchema, limits: GraphQLLimits): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request }) {
          const [overCost] = costWithVariables(schema, document, request.variables, limits);
          if (overCost) throw new GraphQLError(overCost.message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED', http: { status: 400 } } });
        },
      };
    },
  };
}

/** The part of a resolver context the time budget reads; unset (subscriptions) means none. */
export interface TimeBudgeted {
  timeBudget?: { deadlineMs: number; budgetMs: number };
}

/** The time budget of an operation starting now. */
export function startTimeBudget(limits: GraphQLLimits): NonNullable<TimeBudgeted['timeBudget']> {
  return { deadlineMs: Date.now() + limits.timeBudgetMs, budgetMs: limits.timeBudgetMs };
}

/**
 * Refuses to start a field once its operation is past its deadline. JavaScript cannot stop a
 * running resolver, but every field starts through here, so a long operation (many awaited
 * mutations, slow pages) stops at the next field instead of holding the server.
 */
export const enforceTimeBudget: MiddlewareFn<TimeBudgeted> = ({ context }, next) => {
  const budget = context?.timeBudget;
  if (budget && Date.now() > budget.deadlineMs) {
    throw new GraphQLError(`This operation ran past its time budget of ${budget.budgetMs} ms and was stopped; ask for less in one operation.`, {
      extensions: { code: TIME_BUDGET_EXCEEDED },
    });
  }
  return next();
};
