/**
 * @module Refuses GraphQL operations whose arguments hold a NUL character (U+0000), in
 * variables or in string literals of the document: PostgreSQL cannot store one, so the
 * caller gets a 400 naming the argument instead of an internal error from the database.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, visit, type DocumentNode } from 'graphql';
import { findNulCharacter } from '../../services/validation';

function literalWithNul(document: DocumentNode): string | null {
  let found: string | null = null;
  visit(document, {
    Argument(node) {
      if (found) return;
      visit(node.value, {
        StringValue(value) {
          if (!found && value.value.includes('\u0000')) found = node.name.value;
        },
      });
    },
  });
  return found;
}

export const nulGuard: ApolloServerPlugin = {
  async requestDidStart() {
    return {
      async didResolveOperation({ request, document }) {
        const field = findNulCharacter(request.variables ?? {}, '$') ?? literalWithNul(document);
        if (field) {
          throw new GraphQLError(`Invalid value for ${field}: must not contain a NUL character (\\u0000)`, {
            extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
          });
        }
      },
    };
  },
};
