/**
 * Starts Tollgate for a test: in-process (`startTestGateway`) or as a real child process
 * (`spawnGateway`, for restarts and kill -9), on an embedded PGlite store or on a fresh
 * PostgreSQL database. Always on port 0; the URL is returned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';
import { parseConfig } from '../../src/config/load';
import { startGateway, type RunningGateway } from '../../src/server/gateway';

export const MASTER_KEY = 'sk-1234';
export const ROOT = resolve(__dirname, '../..');

/** Prices used by test configs: $1 per 1M input tokens, $2 per 1M output tokens. */
export const TEST_INPUT_PRICE = 0.000001;
export const TEST_OUTPUT_PRICE = 0.000002;

export function testConfigYaml(options: { upstreamBase?: string; extra?: string; models?: string } = {}): string {
  const upstream = options.upstreamBase
    ? `
  - model_name: upstream-gpt
    litellm_params:
      model: openai/gpt-test
      api_base: ${options.upstreamBase}
      api_key: sk-upstream
      input_cost_per_token: ${TEST_INPUT_PRICE}
      output_cost_per_token: ${TEST_OUTPUT_PRICE}`
    : '';
  return `model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: mock/gpt-3.5-turbo
  - model_name: azure-gpt-3.5
    litellm_params:
      model: mock/gpt-3.5-turbo
  - model_name: mistral
    litellm_params:
      model: mock/mistral-small
      input_cost_per_token: 0.0000002
      output_cost_per_token: 0.0000006${upstream}${options.models ?? ''}
general_settings:
  master_key: ${MASTER_KEY}
${options.extra ?? ''}`;
}

export interface TestGatewayOptions {
  yaml?: string;
  databaseUrl?: string;
  dataDir?: string;
  env?: Record<string, string>;
}

export function freshDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'tollgate-test-'));
}

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<RunningGateway & { dataDir: string }> {
  const dataDir = options.dataDir ?? freshDataDir();
  const env: Record<string, string> = { TOLLGATE_DATA_DIR: dataDir, ...(options.env ?? {}) };
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
  const config = parseConfig(options.yaml ?? testConfigYaml(), env);
  const gateway = await startGateway(config, { port: 0, host: '127.0.0.1' });
  return Object.assign(gateway, { dataDir });
}

export function openaiClient(baseURL: string, apiKey = MASTER_KEY): OpenAI {
  return new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
}

export async function api<T = unknown>(base: string, method: string, path: string, body?: unknown, key = MASTER_KEY): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* leave as text */
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

export async function graphql<T = Record<string, unknown>>(base: string, query: string, variables: Record<string, unknown> = {}, key = MASTER_KEY) {
  const result = await api<{ data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] }>(base, 'POST', '/graphql', { query, variables }, key);
  return result.body;
}

export interface SpawnedGateway {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

/** Runs `bin/tollgate.js start` as a real process (requires `npm run build`). */
export async function spawnGateway(options: { yaml: string; dataDir: string; env?: Record<string, string>; command?: 'start' | 'control' | 'proxy'; args?: string[]; nodeArgs?: string[] }): Promise<SpawnedGateway> {
  const configPath = join(options.dataDir, 'config.yaml');
  writeFileSync(configPath, options.yaml);
  const argv = [...(options.nodeArgs ?? []), join(ROOT, 'bin/tollgate.js'), options.command ?? 'start', '--config', configPath, '--port', '0', '--host', '127.0.0.1', ...(options.args ?? [])];
  const child = spawn(process.execPath, argv, {
    env: { ...process.env, VITEST: '', LOG_LEVEL: 'info', TOLLGATE_DATA_DIR: options.dataDir, ...(options.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output}`)), 60_000);
    const onData = () => {
      const match = /"port":(\d+).*"msg":"Tollgate is ready"/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolvePort(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => reject(new Error(`gateway exited during start:\n${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
