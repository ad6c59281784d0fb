/**
 * @module The count of live subscriptions, for `/metrics`. Apart from the subscription
 * resolvers so a process counts them without loading the GraphQL stack.
 */

/** How many subscriptions are listening on the buses now. */
export class OpenSubscriptions {
  count = 0;

  /** Wraps a bus subscription so it is counted while it listens. */
  track<E>(subscribe: (listener: (event: E) => void) => () => void): (listener: (event: E) => void) => () => void {
    return (listener) => {
      const unsubscribe = subscribe(listener);
      this.count++;
      let counted = true;
      return () => {
        if (counted) this.count--;
        counted = false;
        unsubscribe();
      };
    };
  }
}
