/**
 * Providers end to end: the OpenAI SDK against Tollgate in front of an Anthropic Messages
 * upstream, an Azure deployment, OpenAI-compatible embeddings, load-balanced and failing-over
 * deployments; plus the start-up price checks. Every request is billed exactly.
 */
import Anthropic from '@anthropic-ai/sdk';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config/load';
import { countTextTokens } from '../src/pricing/tokens';
import { dollarsToPico } from '../src/shared/money';
import { AnthropicUpstream, anthropicInputTokensOf } from './support/anthropic-upstream';
import { openaiClient, startTestGateway, testConfigYaml, TEST_INPUT_PRICE, TEST_OUTPUT_PRICE } from './support/gateway';
import { eventually, ledgerRows, waitForLedgerRows } from './support/ledger';
import { MockUpstream, promptTokensOf } from './support/mock-upstream';

/** Per-token prices in pico-USD. */
const CLAUDE = { input: 3_000_000n, output: 15_000_000n, cacheRead: 300_000n, cacheWrite: 3_750_000n };
const TEST = { input: dollarsToPico(TEST_INPUT_PRICE), output: dollarsToPico(TEST_OUTPUT_PRICE) };

/** A port nothing listens on: connections to it are refused. */
async function refusingPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const hostOf = (upstream: MockUpstream) => upstream.baseUrl.replace(/\/v1$/, '');

describe('providers', () => {
  let anthropic: AnthropicUpstream;
  let azure: MockUpstream;
  let first: MockUpstream;
  let second: MockUpstream;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let client: ReturnType<typeof openaiClient>;

  beforeAll(async () => {
    [anthropic, azure, first, second] = await Promise.all([new AnthropicUpstream().start(), new MockUpstream().start(), new MockUpstream().start(), new MockUpstream().start()]);
    const deadPort = await refusingPort();
    const testPrices = `
      input_cost_per_token: ${TEST_INPUT_PRICE}
      output_cost_per_token: ${TEST_OUTPUT_PRICE}`;
    const models = `
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
      max_output_tokens: 1234
  - model_name: claude-table
    litellm_params:
      model: anthropic/claude-3-5-haiku-20241022
      api_base: ${anthropic.baseUrl}/v1
      api_key: sk-ant-test
  - model_name: azure-gpt
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: ${hostOf(azure)}
      api_key: azure-key
      api_version: 2024-10-21
    model_info:
      base_model: azure/gpt-4o
  - model_name: azure-embedding
    litellm_params:
      model: azure/my-embedding-deployment
      api_base: ${hostOf(azure)}
      api_key: azure-key${testPrices}
  - model_name: embedding
    litellm_params:
      model: openai/text-embedding-test
      api_base: ${first.baseUrl}${testPrices}
  - model_name: balanced
    litellm_params:
      model: openai/gpt-test
      api_base: ${first.baseUrl}${testPrices}
  - model_name: balanced
    litellm_params:
      model: openai/gpt-test
      api_base: ${second.baseUrl}${testPrices}
  - model_name: failover
    litellm_params:
      model: openai/gpt-test
      api_base: http://127.0.0.1:${deadPort}/v1${testPrices}
  - model_name: failover
    litellm_params:
      model: openai/gpt-test
      api_base: ${second.baseUrl}${testPrices}`;
    gateway = await startTestGateway({ yaml: testConfigYaml({ models }) });
    client = openaiClient(`${gateway.url}/v1`);
  });

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([anthropic?.stop(), azure?.stop(), first?.stop(), second?.stop()]);
  });

  beforeEach(() => {
    anthropic.reset();
    azure.reset();
    first.reset();
    second.reset();
  });

  describe('anthropic/', () => {
    it('has a mock upstream that @anthropic-ai/sdk itself accepts, streaming and not', async () => {
      const sdk = new Anthropic({ baseURL: anthropic.baseUrl, apiKey: 'sk-ant-test', maxRetries: 0 });
      const message = await sdk.messages.create({ model: 'claude-test', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      expect(message.content[0]).toMatchObject({ type: 'text', text: anthropic.behavior.reply });
      const streamed = await sdk.messages.stream({ model: 'claude-test', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
      expect(streamed.content[0]).toMatchObject({ type: 'text', text: anthropic.behavior.reply });
      expect(streamed.usage).toMatchObject({ input_tokens: 1, output_tokens: anthropic.behavior.reply.split(' ').length });
    });

    it('translates a chat completion both ways and prices cache reads and writes at their own rates', async () => {
      anthropic.behavior.cacheReadTokens = 100;
      anthropic.behavior.cacheWriteTokens = 50;
      const completion = await client.chat.completions.create({
        model: 'claude',
        user: 'claude-user',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'Say hello' },
        ],
      });
      const sent = anthropic.requests[0]!;
      expect(sent.path).toBe('/v1/messages');
      expect(sent.headers['x-api-key']).toBe('sk-ant-test');
      expect(sent.headers['anthropic-version']).toBe('2023-06-01');
      expect(sent.headers.authorization).toBeUndefined();
      expect(sent.body).toMatchObject({ model: 'claude-test', system: 'You are terse.', max_tokens: 1234, metadata: { user_id: 'claude-user' }, messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }] });
      expect(sent.body.stream).toBeUndefined();

      const input = anthropicInputTokensOf(sent.body);
      const output = anthropic.behavior.reply.split(' ').length;
      expect(completion.object).toBe('chat.completion');
      expect(completion.choices[0]).toMatchObject({ message: { role: 'assistant', content: anthropic.behavior.reply }, finish_reason: 'stop' });
      expect(completion.usage).toMatchObject({ prompt_tokens: input + 150, completion_tokens: output, total_tokens: input + 150 + output, prompt_tokens_details: { cached_tokens: 100 } });

      const [row] = await ledgerRows(gateway, 'claude-user');
      expect(row).toMatchObject({ provider: 'anthropic', cost_source: 'provider', prompt_tokens: input + 150, cached_prompt_tokens: 100, cache_write_tokens: 50 });
      expect(row!.cost).toBe(BigInt(input) * CLAUDE.input + 100n * CLAUDE.cacheRead + 50n * CLAUDE.cacheWrite + BigInt(output) * CLAUDE.output);
    });

    it('streams Anthropic events as OpenAI chunks, bills provider usage, and adds usage only when asked', async () => {
      anthropic.behavior.cacheReadTokens = 7;
      const messages = [{ role: 'user' as const, content: 'Stream a hello' }];
      const stream = await client.chat.completions.create({ model: 'claude', user: 'claude-stream', stream: true, messages });
      let text = '';
      let finishReason: string | null = null;
      let usageChunks = 0;
      for await (const chunk of stream) {
        expect(chunk.object).toBe('chat.completion.chunk');
        if (chunk.usage) usageChunks++;
        text += chunk.choices[0]?.delta?.content ?? '';
        finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
      }
      expect(text).toBe(anthropic.behavior.reply);
      expect(finishReason).toBe('stop');
      expect(usageChunks).toBe(0);
      expect(anthropic.requests[0]!.body.stream).toBe(true);

      const withUsage = await client.chat.completions.create({ model: 'claude', user: 'claude-stream', stream: true, stream_options: { include_usage: true }, messages });
      const usages = [];
      for await (const chunk of withUsage) if (chunk.usage) usages.push(chunk.usage);
      const input = anthropicInputTokensOf(anthropic.requests[0]!.body);
      const output = anthropic.behavior.reply.split(' ').length;
      expect(usages).toEqual([expect.objectContaining({ prompt_tokens: input + 7, completion_tokens: output, prompt_tokens_details: { cached_tokens: 7 } })]);

      const rows = await ledgerRows(gateway, 'claude-stream');
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(row).toMatchObject({ cost_source: 'provider', status: 'success', cached_prompt_tokens: 7 });
        expect(row.cost).toBe(BigInt(input) * CLAUDE.input + 7n * CLAUDE.cacheRead + BigInt(output) * CLAUDE.output);
      }
    });

    it('charges the provider prompt and the delivered text when the client aborts an Anthropic stream', async () => {
      anthropic.behavior.pauseAfterDeltas = 2;
      anthropic.behavior.cacheReadTokens = 40;
      const stream = await client.chat.completions.create({ model: 'claude', user: 'claude-abort', stream: true, messages: [{ role: 'user', content: 'I will leave' }] });
      let delivered = '';
      for await (const chunk of stream) {
        delivered += chunk.choices[0]?.delta?.content ?? '';
        if (delivered === 'Hello from') break;
      }
      const [row] = await waitForLedgerRows(gateway, 'claude-abort');
      const input = anthropicInputTokensOf(anthropic.requests[0]!.body);
      // The prompt as Anthropic counted it at message_start (cache split included), the output counted.
      expect(row).toMatchObject({ cost_source: 'estimated', status: 'partial', prompt_tokens: input + 40, cached_prompt_tokens: 40 });
      expect(row!.cost).toBe(BigInt(input) * CLAUDE.input + 40n * CLAUDE.cacheRead + BigInt(countTextTokens('Hello from')) * CLAUDE.output);
      expect(await eventually(() => anthropic.abortedStreams, (n) => n === 1)).toBe(1);
    });

    it('relays an Anthropic error event mid-stream as an OpenAI error and bills what was delivered', async () => {
      anthropic.behavior.mode = 'error-event-mid-stream';
      const stream = await client.chat.completions.create({ model: 'claude', user: 'claude-overloaded', stream: true, messages: [{ role: 'user', content: 'busy?' }] });
      let delivered = '';
      await expect(
        (async () => {
          for await (const chunk of stream) delivered += chunk.choices[0]?.delta?.content ?? '';
        })(),
      ).rejects.toThrow(/Overloaded/);
      expect(delivered).toBe('Hello from');
      const [row] = await ledgerRows(gateway, 'claude-overloaded');
      expect(row).toMatchObject({ cost_source: 'estimated', status: 'partial' });
      expect(row!.cost).toBe(BigInt(anthropicInputTokensOf(anthropic.requests[0]!.body)) * CLAUDE.input + BigInt(countTextTokens('Hello from')) * CLAUDE.output);
    });

    it('translates tool calls, streaming and not', async () => {
      anthropic.behavior.toolCall = { name: 'get_weather', input: { city: 'Paris' } };
      const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
      const completion = await client.chat.completions.create({ model: 'claude', user: 'claude-tools', tools, tool_choice: 'required', messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      expect(anthropic.requests[0]!.body).toMatchObject({ tools: [{ name: 'get_weather', input_schema: tools[0]!.function.parameters }], tool_choice: { type: 'any' } });
      expect(completion.choices[0]!.finish_reason).toBe('tool_calls');
      const call = completion.choices[0]!.message.tool_calls![0]! as { id: string; function: { name: string; arguments: string } };
      expect(call).toMatchObject({ id: 'toolu_mock01', function: { name: 'get_weather' } });
      expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });

      const stream = await client.chat.completions.create({ model: 'claude', user: 'claude-tools', tools, stream: true, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      let args = '';
      let finishReason: string | null = null;
      for await (const chunk of stream) {
        for (const toolCall of chunk.choices[0]?.delta?.tool_calls ?? []) args += toolCall.function?.arguments ?? '';
        finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
      }
      expect(JSON.parse(args)).toEqual({ city: 'Paris' });
      expect(finishReason).toBe('tool_calls');
      const rows = await ledgerRows(gateway, 'claude-tools');
      expect(rows.map((row) => [row.cost_source, row.completion_tokens])).toEqual([
        ['provider', 12],
        ['provider', 12],
      ]);
    });

    it('keeps Anthropic error statuses that mean something and charges nothing', async () => {
      anthropic.behavior.mode = 'error';
      for (const [upstreamStatus, errorType, clientStatus] of [
        [400, 'invalid_request_error', 400],
        [529, 'overloaded_error', 503],
        [401, 'authentication_error', 502],
      ] as const) {
        anthropic.behavior.status = upstreamStatus;
        anthropic.behavior.errorType = errorType;
        await expect(client.chat.completions.create({ model: 'claude', user: 'claude-errors', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
          status: clientStatus,
          message: expect.stringContaining(`mock anthropic failure ${upstreamStatus}`),
        });
      }
      expect(await ledgerRows(gateway, 'claude-errors')).toHaveLength(0);
    });

    it('prices a known Claude model from the maintained table', async () => {
      const completion = await client.chat.completions.create({ model: 'claude-table', user: 'claude-table-user', messages: [{ role: 'user', content: 'table price' }] });
      expect(anthropic.requests[0]!.path).toBe('/v1/messages');
      const usage = completion.usage!;
      const [row] = await ledgerRows(gateway, 'claude-table-user');
      // @pydantic/genai-prices 0.1.8: claude-3-5-haiku $0.80 / $4 per million tokens.
      expect(row!.cost).toBe(BigInt(usage.prompt_tokens) * 800_000n + BigInt(usage.completion_tokens) * 4_000_000n);
    });

    it('refuses embeddings on an anthropic/ model with a 400 that says why', async () => {
      await expect(client.embeddings.create({ model: 'claude', input: 'x' })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('no embeddings API') });
    });
  });

  describe('azure/', () => {
    it('calls the deployment URL with api-version and the api-key header, and bills at the base model price', async () => {
      azure.behavior.cachedTokens = 2;
      const messages = [{ role: 'user' as const, content: 'hello azure, how are you' }];
      const completion = await client.chat.completions.create({ model: 'azure-gpt', user: 'azure-user', messages });
      expect(completion.choices[0]!.message.content).toBe(azure.behavior.reply);
      const sent = azure.requests[0]!;
      expect(sent.path).toBe('/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21');
      expect(sent.headers['api-key']).toBe('azure-key');
      expect(sent.headers.authorization).toBeUndefined();

      const stream = await client.chat.completions.create({ model: 'azure-gpt', user: 'azure-user', stream: true, messages });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      expect(text).toBe(azure.behavior.reply);
      expect(azure.requests[1]!.path).toBe(sent.path);

      const prompt = promptTokensOf({ messages });
      const output = azure.behavior.reply.split(' ').length;
      const rows = await ledgerRows(gateway, 'azure-user');
      expect(rows).toHaveLength(2);
      // @pydantic/genai-prices 0.1.8, azure gpt-4o: $2.50 input, $1.25 cached input, $10 output per million.
      for (const row of rows) {
        expect(row).toMatchObject({ provider: 'azure', cost_source: 'provider', cached_prompt_tokens: 2 });
        expect(row.cost).toBe(BigInt(prompt - 2) * 2_500_000n + 2n * 1_250_000n + BigInt(output) * 10_000_000n);
      }
    });

    it('meters Azure embeddings at the embeddings deployment URL', async () => {
      const result = await client.embeddings.create({ model: 'azure-embedding', user: 'azure-embedder', input: ['first text', 'second text!'] });
      expect(result.data).toHaveLength(2);
      expect(azure.requests[0]!.path).toBe('/openai/deployments/my-embedding-deployment/embeddings?api-version=2024-10-21');
      const [row] = await ledgerRows(gateway, 'azure-embedder');
      expect(row).toMatchObject({ endpoint: 'embeddings', cost_source: 'provider', prompt_tokens: result.usage.prompt_tokens, completion_tokens: 0 });
      expect(row!.cost).toBe(BigInt(result.usage.prompt_tokens) * TEST.input);
    });
  });

  describe('embeddings', () => {
    it('are metered like chat on /v1/embeddings and /embeddings', async () => {
      const viaSdk = await client.embeddings.create({ model: 'embedding', user: 'embedder', input: 'the quick brown fox' });
      const viaFetch = await fetch(`${gateway.url}/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
        body: JSON.stringify({ model: 'embedding', user: 'embedder', input: ['jumps over', 'the lazy dog'] }),
      });
      expect(viaFetch.status).toBe(200);
      const fetched = (await viaFetch.json()) as { usage: { prompt_tokens: number } };
      const costs = [viaSdk.usage.prompt_tokens, fetched.usage.prompt_tokens].map((tokens) => BigInt(tokens) * TEST.input);
      expect(dollarsToPico(viaFetch.headers.get('x-litellm-response-cost')!)).toBe(costs[1]);
      const rows = await ledgerRows(gateway, 'embedder');
      expect(rows.map((row) => [row.endpoint, row.cost_source, row.cost])).toEqual([
        ['embeddings', 'provider', costs[0]],
        ['embeddings', 'provider', costs[1]],
      ]);
      expect(first.requests.map((request) => request.path)).toEqual(['/v1/embeddings', '/v1/embeddings']);
    });

    it('rejects embeddings without input with a 400 naming the field', async () => {
      await expect(client.embeddings.create({ model: 'embedding', input: [] as string[] })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('"input"') });
    });
  });

  describe('deployments under one model_name', () => {
    it('are load-balanced', async () => {
      for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: 'balanced', user: 'balanced-user', messages: [{ role: 'user', content: `request ${i}` }] });
      expect([first.requests.length, second.requests.length]).toEqual([2, 2]);
      expect(await ledgerRows(gateway, 'balanced-user')).toHaveLength(4);
    });

    it('fail over to the next deployment when one refuses the connection, streaming and not', async () => {
      for (let i = 0; i < 2; i++) {
        const completion = await client.chat.completions.create({ model: 'failover', user: 'failover-user', messages: [{ role: 'user', content: `plain ${i}` }] });
        expect(completion.choices[0]!.message.content).toBe(second.behavior.reply);
        const stream = await client.chat.completions.create({ model: 'failover', user: 'failover-user', stream: true, messages: [{ role: 'user', content: `stream ${i}` }] });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
        expect(text).toBe(second.behavior.reply);
      }
      expect(second.requests).toHaveLength(4);
      const rows = await ledgerRows(gateway, 'failover-user');
      expect(rows).toHaveLength(4);
      expect(rows.every((row) => row.cost_source === 'provider')).toBe(true);
    });
  });
});

describe('prices at start-up', () => {
  const yaml = (params: string) => `model_list:\n  - model_name: m\n    litellm_params:\n${params}\ngeneral_settings:\n  master_key: sk-1234\n`;

  it('refuses a model with no known price, naming it', () => {
    expect(() => parseConfig(yaml('      model: openai/gpt-nobody-knows\n      api_base: http://127.0.0.1:1/v1'), {})).toThrow(ConfigError);
    expect(() => parseConfig(yaml('      model: openai/gpt-nobody-knows'), {})).toThrow(/model_list\[0\] \(m\): no price is known for "openai\/gpt-nobody-knows"/);
  });

  it('refuses a self-hosted model unless it is priced, and accepts an explicit price of 0', () => {
    expect(() => parseConfig(yaml('      model: ollama/llama3\n      api_base: http://127.0.0.1:11434/v1'), {})).toThrow(/no price is known/);
    const config = parseConfig(yaml('      model: ollama/llama3\n      api_base: http://127.0.0.1:11434/v1\n      input_cost_per_token: 0\n      output_cost_per_token: 0'), {});
    expect(config.deployments[0]!.price).toMatchObject({ inputPerToken: 0n, outputPerToken: 0n, source: 'config' });
  });

  it('takes config prices first, then the table, with the table cache prices', () => {
    const table = parseConfig(yaml('      model: openai/gpt-4o-mini'), {}).deployments[0]!.price;
    expect(table).toMatchObject({ inputPerToken: 150_000n, outputPerToken: 600_000n, cacheReadPerToken: 75_000n, source: 'genai-prices' });
    const overridden = parseConfig(yaml('      model: openai/gpt-4o-mini\n      input_cost_per_token: 0.000001'), {}).deployments[0]!.price;
    expect(overridden).toMatchObject({ inputPerToken: 1_000_000n, outputPerToken: 600_000n });
  });

  it('requires api_base for azure/', () => {
    expect(() => parseConfig(yaml('      model: azure/my-deployment\n      input_cost_per_token: 0\n      output_cost_per_token: 0'), {})).toThrow(/api_base: is required for provider "azure"/);
  });
});
