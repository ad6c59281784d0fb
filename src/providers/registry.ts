/**
 * @module Which adapter serves a `provider/` prefix. Everything not named here speaks the
 * OpenAI API (openai/, mistral/, groq/, together_ai/, ollama/, hosted_vllm/, deepseek/ …).
 */
import { anthropicProvider } from './anthropic';
import { azureProvider } from './azure';
import { mockProvider } from './mock';
import { openAICompatibleProvider } from './openai-compatible';
import type { ProviderAdapter } from './types';

const ADAPTERS: Record<string, ProviderAdapter> = {
  mock: mockProvider,
  azure: azureProvider,
  anthropic: anthropicProvider,
};

export function adapterFor(provider: string): ProviderAdapter {
  return ADAPTERS[provider] ?? openAICompatibleProvider;
}
