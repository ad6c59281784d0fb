/**
 * @module Azure OpenAI addresses a *deployment*, not a model:
 * `{resource}/openai/deployments/{deployment}/{operation}?api-version={version}`.
 */

/** Used when the config gives no `api_version`: the latest GA data-plane version we tested against. */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';

export function azureDeploymentUrl(apiBase: string, deployment: string, operation: 'chat/completions' | 'embeddings', apiVersion: string | undefined): string {
  const resource = apiBase.replace(/\/+$/, '').replace(/\/openai$/, '');
  const version = encodeURIComponent(apiVersion ?? DEFAULT_AZURE_API_VERSION);
  return `${resource}/openai/deployments/${encodeURIComponent(deployment)}/${operation}?api-version=${version}`;
}
