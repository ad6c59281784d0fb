/**
 * @module The data plane's routes (SPEC §3): which path and method is which inference
 * endpoint. The server edge asks `matchInferenceRoute` and hands a match to the handler;
 * everything else goes to the control plane, which answers 404 for paths it does not own.
 */
export type InferenceEndpoint = 'chat' | 'embeddings' | 'responses' | 'messages' | 'count_tokens' | 'get_response' | 'models';

export interface RouteMatch {
  endpoint: InferenceEndpoint;
  /** The method the route takes; a request with another gets 405. */
  method: 'POST' | 'GET';
  /** `GET /v1/responses/{id}`: the id. */
  id?: string;
}

const EXACT: Record<string, Omit<RouteMatch, 'id'>> = {
  '/chat/completions': { endpoint: 'chat', method: 'POST' },
  '/v1/chat/completions': { endpoint: 'chat', method: 'POST' },
  '/embeddings': { endpoint: 'embeddings', method: 'POST' },
  '/v1/embeddings': { endpoint: 'embeddings', method: 'POST' },
  '/responses': { endpoint: 'responses', method: 'POST' },
  '/v1/responses': { endpoint: 'responses', method: 'POST' },
  '/v1/messages': { endpoint: 'messages', method: 'POST' },
  '/v1/messages/count_tokens': { endpoint: 'count_tokens', method: 'POST' },
  '/models': { endpoint: 'models', method: 'GET' },
  '/v1/models': { endpoint: 'models', method: 'GET' },
};

const STORED_RESPONSE = /^\/(?:v1\/)?responses\/([^/]+)$/;

export function matchInferenceRoute(path: string): RouteMatch | null {
  const exact = EXACT[path];
  if (exact) return exact;
  const stored = STORED_RESPONSE.exec(path);
  if (stored) return { endpoint: 'get_response', method: 'GET', id: safeDecode(stored[1]!) };
  return null;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // a malformed escape is just an id that matches nothing
  }
}
