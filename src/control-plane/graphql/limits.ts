/**
 * @module What one GraphQL operation may ask of the server, checked the same way over HTTP
 * and graphql-ws: tokens (at parse), depth, cost, aliases and directives (graphql-armor's
 * validation rules, which measure each fragment once, so nested spreads cost linear time),
 * and a time budget for executing it. A refused document is a 400 naming the limit.
 */
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { GraphQLError, specifiedRules, type ValidationContext, type ValidationRule } from 'graphql';
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

// Room for the admin UI's largest query (cost ~1,400 with 50 customers) and introspection.
export const DEFAULT_GRAPHQL_LIMITS: GraphQLLimits = {
  maxDepth: 8,
  maxCost: 20_000,
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
    costLimitRule({ ...common, maxCost: limits.maxCost, flattenFragments: true, ignoreIntrospection: true }),
    maxAliasesRule({ ...common, n: limits.maxAliases }),
    maxDirectivesRule({ ...common, n: limits.maxDirectives }),
  ] as ValidationRule[];
}

/** graphql's specified rules plus the limits, for paths that validate themselves (graphql-ws). */
export function allValidationRules(limits: GraphQLLimits): ValidationRule[] {
  return [...specifiedRules, ...limitRules(limits)];
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
