/** azure/: deployment URLs, api-version and the api-key header. */
import { describe, expect, it } from 'vitest';
import type { Deployment } from '../../config/load';
import { azureProvider } from '.';
import { azureDeploymentUrl, DEFAULT_AZURE_API_VERSION } from './urls';

const deployment = { id: 'a#0', modelName: 'a', provider: 'azure', upstreamModel: 'my gpt', apiBase: 'https://res.openai.azure.com/', apiKey: 'k', apiVersion: '2024-10-21', maxOutputTokens: 10 } as Deployment;

describe('azure/', () => {
  it('addresses the deployment with the api-version and sends api-key instead of a bearer token', () => {
    const request = azureProvider.buildChatRequest({ deployment, body: { model: 'a', messages: [], user: 'c' }, stream: true, clientWantsUsage: false });
    expect(request.url).toBe('https://res.openai.azure.com/openai/deployments/my%20gpt/chat/completions?api-version=2024-10-21');
    expect(request.headers['api-key']).toBe('k');
    expect(request.headers.authorization).toBeUndefined();
    expect(JSON.parse(request.body!)).toMatchObject({ model: 'my gpt', stream_options: { include_usage: true }, user: 'c' });
  });

  it('accepts api_base with a trailing /openai and defaults the version', () => {
    expect(azureDeploymentUrl('https://res.openai.azure.com/openai', 'emb', 'embeddings', undefined)).toBe(`https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=${DEFAULT_AZURE_API_VERSION}`);
  });
});
