/// <reference lib="dom" />
/**
 * The admin UI tests' shared set-up: a gateway as an operator has it (a default budget,
 * tiers, customers on each, real traffic, a customer over its cap and refused), Debian's
 * Chromium (playwright-core) signed in, and helpers to look at the page as a person would.
 * Screenshots go to test-artifacts/ui/ (gitignored).
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { api, graphql, openaiClient, ROOT, startTestGateway, testConfigYaml } from './gateway';

export const ARTIFACTS = join(ROOT, 'test-artifacts', 'ui');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const CHROMIUM = '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };

export interface ConsoleUnderTest {
  gateway: Awaited<ReturnType<typeof startTestGateway>>;
  browser: Browser;
  page: Page;
}

const state = {} as ConsoleUnderTest;

/** Registers the suite's hooks: start and seed the gateway, open Chromium; `signIn` also signs in through the page. */
export function setUpConsole(options: { signIn: boolean }): ConsoleUnderTest {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    state.gateway = await startTestGateway({ yaml: testConfigYaml({ extra: 'litellm_settings:\n  max_end_user_budget_id: default-tier\n' }) });
    if (!existsSync(CHROMIUM)) throw new Error(`The UI tests drive Debian's Chromium at ${CHROMIUM}: install it with "apt-get install chromium" (.ci/run does).`);
    state.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    // A context of our own: axe-core's runner opens its helper page in the page's context.
    state.page = await (await state.browser.newContext({ viewport: DESKTOP, acceptDownloads: true })).newPage();
    state.page.setDefaultTimeout(15_000);
    await seed();
    if (options.signIn) {
      await state.page.goto(`${state.gateway.url}/ui/`);
      await state.page.getByLabel('API key').fill('sk-1234');
      await state.page.getByRole('button', { name: 'Sign in' }).click();
      await state.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    }
  });
  afterAll(async () => {
    await state.browser?.close();
    await state.gateway?.stop();
  });
  return state;
}

/** An operator's gateway: a default budget, tiers, customers on each, real traffic, some refused. */
async function seed(): Promise<void> {
  const { url } = state.gateway;
  const budgets: [string, Record<string, unknown>][] = [
    ['default-tier', { max_budget: 10, budget_duration: '30d' }],
    ['free', { max_budget: 1, soft_budget: 0.5, budget_duration: '30d' }],
    ['pro', { max_budget: 50, budget_duration: '30d' }],
    ['tiny', { max_budget: 0.00003, soft_budget: 0.00001, budget_duration: '30d' }],
  ];
  for (const [id, fields] of budgets) expect((await api(url, 'POST', '/budget/new', { budget_id: id, ...fields })).status).toBe(200);
  for (let i = 0; i < 6; i++) await api(url, 'POST', '/customer/new', { user_id: `free-${i}`, budget_id: 'free' });
  for (let i = 0; i < 4; i++) await api(url, 'POST', '/customer/new', { user_id: `pro-${i}`, budget_id: 'pro', alias: `Pro customer ${i}` });
  await api(url, 'POST', '/customer/new', { user_id: 'over-cap', budget_id: 'tiny', alias: 'Spends past its cap' });
  for (let i = 0; i < 6; i++) await complete(`pro-${i % 4}`, `A longer question number ${i} about the history of tollgates in Europe, please answer.`, i % 2 ? 'mistral' : 'gpt-3.5-turbo');
  for (let i = 0; i < 5; i++) await complete(`free-${i}`, `Hi ${i}`);
  for (let i = 0; i < 3; i++) await complete(`walk-in-${i}`, 'A walk-in on the default budget.');
  // over-cap crosses its soft budget and its cap, then is refused.
  for (let n = 0; n < 10 && (await refusedStatus('over-cap')) === 200; n++);
  expect(await refusedStatus('over-cap')).toBe(402);
  expect(await refusedStatus('over-cap')).toBe(402);
}

export async function screenshot(name: string): Promise<void> {
  await state.page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

export async function complete(user: string, content: string, model = 'gpt-3.5-turbo', key = 'sk-1234') {
  const { response } = await openaiClient(`${state.gateway.url}/v1`, key)
    .chat.completions.create({ model, user, messages: [{ role: 'user', content }] })
    .withResponse();
  return { requestId: response.headers.get('x-request-id')!, cost: Number(response.headers.get('x-litellm-response-cost')) };
}

/** The status a plain chat completion of `user` gets (200, or the refusal's). */
export async function refusedStatus(user: string): Promise<number> {
  const response = await fetch(`${state.gateway.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hello again' }] }),
  });
  await response.text();
  return response.status;
}

export async function customerSpend(id: string): Promise<number> {
  return (await api<{ spend: number }>(state.gateway.url, 'GET', `/customer/info?end_user_id=${encodeURIComponent(id)}`)).body.spend;
}

/** Every ledger row, from the API (the overview must agree with it). */
export async function ledger(): Promise<{ cost: number; customerId: string | null }[]> {
  const result = await graphql<{ spendLogs: { nodes: { cost: number; customerId: string | null }[] } }>(state.gateway.url, '{ spendLogs(first: 1000) { nodes { cost customerId } } }');
  return result.data!.spendLogs.nodes;
}

/** Serious or critical axe-core violations on the page as it is now. */
export async function seriousViolations(): Promise<string[]> {
  const results = await new AxeBuilder({ page: state.page }).setLegacyMode(true).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

export async function horizontalOverflow(): Promise<number> {
  return state.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Opens a route of the signed-in UI and waits for its heading and its data. */
export async function open(hash: string, heading: string | RegExp): Promise<void> {
  await state.page.goto(`${state.gateway.url}/ui/${hash}`);
  await state.page.getByRole('heading', { level: 1, name: heading }).waitFor();
  // Every section has its data (the pages say "Loading…" until then).
  await state.page.waitForFunction(() => !document.body.innerText.includes('Loading…'));
}

/** Every page of the console, with its heading, for the accessibility and phone checks. */
export const PAGES: [string, string | RegExp, string][] = [
    ['#/overview', 'Overview', 'overview'],
    ['#/customers', 'Customers', 'customers'],
    ['#/customers/over-cap', /over-cap/, 'customer'],
    ['#/budgets', 'Budgets', 'budgets'],
    ['#/keys', 'Keys', 'keys'],
  ];
