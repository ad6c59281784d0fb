/**
 * @module Refuses a subscription sent over HTTP with a 400 saying where subscriptions are
 * served: executed over HTTP it would run its event resolver once with no event.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';

export const subscriptionsOverWebSocketOnly: ApolloServerPlugin = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation }) {
        if (operation?.operation === 'subscription') {
          throw new GraphQLError(
            'Subscriptions are served over graphql-ws (WebSocket, subprotocol graphql-transport-ws) at /graphql, not over HTTP POST.',
            { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } },
          );
        }
      },
    };
  },
};
