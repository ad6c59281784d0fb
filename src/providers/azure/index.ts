/**
 * @module `azure/<deployment>`: Azure OpenAI. Same wire format as OpenAI (body, stream, usage,
 * errors), but the deployment is in the URL, the version in `api-version`, and the key travels
 * in the `api-key` header instead of `Authorization: Bearer`.
 */
import { openAIChatBody, openAICompatibleProvider, openAIEmbeddingsBody } from '../openai-compatible';
import type { ChatContext, EmbeddingsContext, ProviderAdapter, UpstreamRequest } from '../types';
import { GatewayError } from '../../shared/errors';
import { azureDeploymentUrl } from './urls';

function azureHeaders(apiKey: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (apiKey) headers['api-key'] = apiKey;
  return headers;
}

function resourceOf(context: ChatContext | EmbeddingsContext): string {
  // The config loader requires api_base for azure/; this guards direct use of the adapter.
  if (!context.deployment.apiBase) throw new GatewayError('internal_error', `Deployment ${context.deployment.id} (azure) has no api_base.`);
  return context.deployment.apiBase;
}

export const azureProvider: ProviderAdapter = {
  ...openAICompatibleProvider,
  id: 'azure',

  buildChatRequest(context: ChatContext): UpstreamRequest {
    const { deployment } = context;
    return {
      url: azureDeploymentUrl(resourceOf(context), deployment.upstreamModel, 'chat/completions', deployment.apiVersion),
      method: 'POST',
      headers: azureHeaders(deployment.apiKey),
      body: JSON.stringify(openAIChatBody(context)),
    };
  },

  buildEmbeddingsRequest(context: EmbeddingsContext): UpstreamRequest {
    const { deployment } = context;
    return {
      url: azureDeploymentUrl(resourceOf(context), deployment.upstreamModel, 'embeddings', deployment.apiVersion),
      method: 'POST',
      headers: azureHeaders(deployment.apiKey),
      body: JSON.stringify(openAIEmbeddingsBody(context)),
    };
  },
};
