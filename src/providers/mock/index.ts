/**
 * @module `mock/<model>`: the OpenAI adapter pointed at the in-process mock upstream, with the
 * deployment's mock settings carried in headers so the upstream stays stateless.
 */
import { openAICompatibleProvider } from '../openai-compatible';
import type { ChatContext, EmbeddingsContext, ProviderAdapter, UpstreamRequest } from '../types';

export const MOCK_BASE = 'mock://tollgate';

function withMockSettings(request: UpstreamRequest, context: ChatContext | EmbeddingsContext): UpstreamRequest {
  const mock = context.deployment.mock;
  const headers: Record<string, string> = { ...request.headers, 'x-mock-latency-ms': String(mock?.latencyMs ?? 0) };
  if (mock?.response) headers['x-mock-response'] = encodeURIComponent(mock.response);
  return { ...request, headers };
}

export const mockProvider: ProviderAdapter = {
  ...openAICompatibleProvider,
  id: 'mock',
  buildChatRequest(context) {
    return withMockSettings(openAICompatibleProvider.buildChatRequest({ ...context, deployment: { ...context.deployment, apiBase: MOCK_BASE } }), context);
  },
  buildEmbeddingsRequest(context) {
    return withMockSettings(openAICompatibleProvider.buildEmbeddingsRequest({ ...context, deployment: { ...context.deployment, apiBase: MOCK_BASE } }), context);
  },
};
