/**
 * One gateway for the client-SDK suites (Responses, Messages, AI SDK, LangChain): a recording
 * OpenAI-compatible upstream (chat and `/responses`) and a recording Anthropic upstream, with
 * the deployments each route is tried on, plus helpers to create customers, count the
 * requests an SDK makes, and compute what a request must cost to the pico-dollar.
 */
import { dollarsToPico, picoToDecimalString } from '../../src/shared/money';
import { AnthropicUpstream } from './anthropic-upstream';
import { api, startTestGateway, testConfigYaml, TEST_INPUT_PRICE, TEST_OUTPUT_PRICE } from './gateway';
import { MockUpstream } from './mock-upstream';

/** Per-token prices in pico-USD. */
export const GPT = { input: dollarsToPico(TEST_INPUT_PRICE), output: dollarsToPico(TEST_OUTPUT_PRICE), cacheRead: dollarsToPico(0.0000005) };
export const CLAUDE = { input: 3_000_000n, output: 15_000_000n, cacheRead: 300_000n, cacheWrite: 3_750_000n };

export interface ApiRoutesHarness {
  gateway: Awaited<ReturnType<typeof startTestGateway>>;
  openai: MockUpstream;
  anthropic: AnthropicUpstream;
  /** The gateway's base URL with /v1 (what SDKs take as baseURL). */
  v1: string;
  reset(): void;
  stop(): Promise<void>;
}

export async function startApiRoutesHarness(extra = ''): Promise<ApiRoutesHarness> {
  const [openai, anthropic] = await Promise.all([new MockUpstream().start(), new AnthropicUpstream().start()]);
  const gptPrices = `
      input_cost_per_token: ${TEST_INPUT_PRICE}
      output_cost_per_token: ${TEST_OUTPUT_PRICE}
      cache_read_input_token_cost: 0.0000005`;
  const models = `
  - model_name: gpt-native
    litellm_params:
      model: openai/gpt-test
      api_base: ${openai.baseUrl}
      api_key: sk-upstream${gptPrices}
  - model_name: gpt-chat
    litellm_params:
      model: openai/gpt-test
      api_base: ${openai.baseUrl}
      api_key: sk-upstream${gptPrices}
    model_info:
      responses_api: translate
  - model_name: claude
    litellm_params:
      model: anthropic/claude-test
      api_base: ${anthropic.baseUrl}
      api_key: sk-ant-test
      input_cost_per_token: 0.000003
      output_cost_per_token: 0.000015
      cache_read_input_token_cost: 0.0000003
      cache_creation_input_token_cost: 0.00000375
    model_info:
      max_output_tokens: 1234`;
  const gateway = await startTestGateway({ yaml: testConfigYaml({ models, extra }) });
  return {
    gateway,
    openai,
    anthropic,
    v1: `${gateway.url}/v1`,
    reset() {
      openai.reset();
      anthropic.reset();
    },
    async stop() {
      await gateway.stop();
      await Promise.all([openai.stop(), anthropic.stop()]);
    },
  };
}

/** Cost in pico-USD of a request at `price`. */
export function costOf(price: { input: bigint; output: bigint; cacheRead?: bigint; cacheWrite?: bigint }, usage: { input: number; output: number; cacheRead?: number; cacheWrite?: number }): bigint {
  const cacheRead = BigInt(usage.cacheRead ?? 0);
  const cacheWrite = BigInt(usage.cacheWrite ?? 0);
  return BigInt(usage.input) * price.input + BigInt(usage.output) * price.output + cacheRead * (price.cacheRead ?? price.input) + cacheWrite * (price.cacheWrite ?? price.input);
}

/** The customer's period spend as /customer/info reports it, and the expected figure in the same form. */
export async function customerSpend(base: string, customerId: string): Promise<number> {
  const info = await api<{ spend: number }>(base, 'GET', `/customer/info?end_user_id=${encodeURIComponent(customerId)}`);
  return info.body.spend;
}

export const dollars = (pico: bigint): number => Number(picoToDecimalString(pico));

export async function createCustomer(base: string, customerId: string, fields: Record<string, unknown> = {}): Promise<void> {
  const created = await api(base, 'POST', '/customer/new', { user_id: customerId, ...fields });
  if (created.status !== 200) throw new Error(`could not create ${customerId}: ${JSON.stringify(created.body)}`);
}

/** A fetch that counts (and keeps the bodies of) the requests an SDK sends, e.g. to see that it did not retry. */
export function countingFetch(): { fetch: typeof fetch; count: () => number; bodies: unknown[] } {
  const bodies: unknown[] = [];
  return {
    fetch: ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      bodies.push(typeof init?.body === 'string' ? JSON.parse(init.body) : null);
      return fetch(input, init);
    }) as typeof fetch,
    count: () => bodies.length,
    bodies,
  };
}
