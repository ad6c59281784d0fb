/**
 * The GraphQL limits as validation rules: hostile documents are refused in bounded time and
 * name the limit; every operation the admin UI sends fits.
 */
import { describe, expect, it } from 'vitest';
import { parse, validate } from 'graphql';
import * as operations from '../../../ui/src/api/operations';
import { deepIntrospection, manyAliases, nestedFragmentSpreads } from '../../../test/support/hostile-graphql';
import { allValidationRules, costWithVariables, DEFAULT_GRAPHQL_LIMITS } from './limits';
import { buildGatewaySchema } from './schema';

const schema = buildGatewaySchema();
const messages = (query: string) => validate(schema, parse(query), allValidationRules(DEFAULT_GRAPHQL_LIMITS)).map((error) => error.message);

describe('GraphQL limits', () => {
  it('refuses 20 levels × 20 fragment spreads by cost, measuring each fragment once', { timeout: 5_000 }, () => {
    const document = nestedFragmentSpreads(20, 20);
    expect(document.length).toBeLessThan(5_000);
    const found = messages(document);
    expect(found.some((message) => /Cost limit of 50000 exceeded/.test(message))).toBe(true);
  });

  it('accepts a fragment spread a few times when the query stays small', () => {
    expect(messages(nestedFragmentSpreads(3, 2))).toEqual([]);
  });

  it('refuses more aliases than the limit', () => {
    expect(messages(manyAliases(DEFAULT_GRAPHQL_LIMITS.maxAliases + 1)).join('\n')).toMatch(/Aliases limit of 30 exceeded, found 31/);
    expect(messages(manyAliases(DEFAULT_GRAPHQL_LIMITS.maxAliases))).toEqual([]);
  });

  it('refuses nesting deeper than the limit, introspection included', () => {
    expect(messages(deepIntrospection(10)).join('\n')).toMatch(/depth limit of 8 exceeded/);
    expect(messages(deepIntrospection(4))).toEqual([]);
  });

  it('refuses more directives than the limit', () => {
    const query = `query { budgets { id ${'@include(if: true) '.repeat(DEFAULT_GRAPHQL_LIMITS.maxDirectives + 1)} } }`;
    expect(messages(query).join('\n')).toMatch(/Directives limit of 50 exceeded/);
  });

  it('counts a page size passed as a variable like a literal one', () => {
    const page = (first: number) => costWithVariables(schema, parse(operations.CUSTOMERS), { first }, DEFAULT_GRAPHQL_LIMITS).map((e) => e.message);
    expect(page(50)).toEqual([]); // the UI's page
    expect(page(1000).join('\n')).toMatch(/Cost limit of 50000 exceeded/);
    expect(messages(operations.CUSTOMERS.replace('first: $first', 'first: 1000'))).toContain(page(1000)[0]);
  });

  it("lets every operation of the admin UI through, and the standard introspection query", async () => {
    const { getIntrospectionQuery } = await import('graphql');
    const sent = Object.entries(operations as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
    expect(sent.length).toBeGreaterThan(5);
    for (const [name, query] of sent) expect({ name, errors: messages(query) }).toEqual({ name, errors: [] });
    expect(messages(getIntrospectionQuery())).toEqual([]);
  });
});
