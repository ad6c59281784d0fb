/**
 * Queries and mutations over HTTP POST /graphql with the signed-in key. Every failure becomes
 * a RequestError whose message is the gateway's own (it names the field and the rule).
 */
export class RequestError extends Error {
  constructor(
    message: string,
    /** The input field the gateway refused (camelCase), when it says. */
    readonly field: string | null = null,
    /** True when the key itself was refused: the page goes back to sign-in. */
    readonly unauthorized = false,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string; param?: string | null; status?: number } }[];
  error?: { message?: string };
}

let onUnauthorized: ((message: string) => void) | null = null;

/** Called once by the app: what to do when the gateway stops accepting the key. */
export function handleUnauthorized(callback: (message: string) => void): void {
  onUnauthorized = callback;
}

export async function request<T>(key: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(new URL('../graphql', window.location.href.split('#')[0]), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new RequestError('The gateway cannot be reached. Is it running?');
  }
  let body: GraphQLResponse<T>;
  try {
    body = (await response.json()) as GraphQLResponse<T>;
  } catch {
    throw new RequestError(`The gateway answered ${response.status} ${response.statusText} without a readable body.`);
  }
  if (response.status === 401) {
    const message = body.error?.message ?? 'The gateway refused this key.';
    onUnauthorized?.(message);
    throw new RequestError(message, null, true);
  }
  const first = body.errors?.[0];
  if (first) {
    // GraphQL's own input checks (e.g. "Int cannot represent…") say where in a long message; keep them as sent.
    throw new RequestError(first.message, first.extensions?.param ?? null);
  }
  if (!response.ok || !body.data) throw new RequestError(body.error?.message ?? `The gateway answered ${response.status}.`);
  return body.data;
}
