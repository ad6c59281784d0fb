/**
 * The admin UI at /ui in headless Chromium (Debian's, driven by playwright-core), used as an
 * operator would, against a gateway the test starts with a default budget, tiers, customers
 * and real traffic (some of it refused). Asserts what the console must get right: the
 * default budget cannot be deleted, an over-budget customer reads "Over budget" with its
 * refused requests listed, alert history survives a reload, the overview's totals equal the
 * ledger, the 390 px layout has no horizontal scroll, axe-core finds no serious or critical
 * violation, and a keyboard-only path creates a budget with the right id.
 * Screenshots (desktop and 390 px) go to test-artifacts/ui/ (gitignored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { api, graphql, openaiClient, ROOT, startTestGateway, testConfigYaml } from './support/gateway';
import { usd } from '../ui/src/format';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'ui');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const CHROMIUM = '/usr/bin/chromium';
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let browser: Browser;
let page: Page;

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function complete(user: string, content: string, model = 'gpt-3.5-turbo') {
  const { response } = await openaiClient(`${gateway.url}/v1`)
    .chat.completions.create({ model, user, messages: [{ role: 'user', content }] })
    .withResponse();
  return { requestId: response.headers.get('x-request-id')!, cost: Number(response.headers.get('x-litellm-response-cost')) };
}

async function refusedStatus(user: string): Promise<number> {
  const response = await fetch(`${gateway.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1234' },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', user, messages: [{ role: 'user', content: 'hello again' }] }),
  });
  await response.text();
  return response.status;
}

async function customerSpend(id: string): Promise<number> {
  return (await api<{ spend: number }>(gateway.url, 'GET', `/customer/info?end_user_id=${encodeURIComponent(id)}`)).body.spend;
}

async function ledger(): Promise<{ cost: number; customerId: string | null }[]> {
  const result = await graphql<{ spendLogs: { nodes: { cost: number; customerId: string | null }[] } }>(gateway.url, '{ spendLogs(first: 1000) { nodes { cost customerId } } }');
  return result.data!.spendLogs.nodes;
}

/** Serious or critical axe-core violations on the page as it is now. */
async function seriousViolations(): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function horizontalOverflow(): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

async function open(hash: string, heading: string | RegExp): Promise<void> {
  await page.goto(`${gateway.url}/ui/${hash}`);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await page.waitForLoadState('networkidle');
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  gateway = await startTestGateway({ yaml: testConfigYaml({ extra: 'litellm_settings:\n  max_end_user_budget_id: default-tier\n' }) });
  if (!existsSync(CHROMIUM)) throw new Error(`The UI tests drive Debian's Chromium at ${CHROMIUM}: install it with "apt-get install chromium" (.ci/run does).`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  // A context of our own: axe-core's runner opens its helper page in the page's context.
  page = await (await browser.newContext({ viewport: DESKTOP, acceptDownloads: true })).newPage();
  page.setDefaultTimeout(15_000);

  // An operator's gateway: a default budget, tiers, customers on each, real traffic.
  const budgets: [string, Record<string, unknown>][] = [
    ['default-tier', { max_budget: 10, budget_duration: '30d' }],
    ['free', { max_budget: 1, soft_budget: 0.5, budget_duration: '30d' }],
    ['pro', { max_budget: 50, budget_duration: '30d' }],
    ['tiny', { max_budget: 0.00003, soft_budget: 0.00001, budget_duration: '30d' }],
  ];
  for (const [id, fields] of budgets) expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: id, ...fields })).status).toBe(200);
  for (let i = 0; i < 6; i++) await api(gateway.url, 'POST', '/customer/new', { user_id: `free-${i}`, budget_id: 'free' });
  for (let i = 0; i < 4; i++) await api(gateway.url, 'POST', '/customer/new', { user_id: `pro-${i}`, budget_id: 'pro', alias: `Pro customer ${i}` });
  await api(gateway.url, 'POST', '/customer/new', { user_id: 'over-cap', budget_id: 'tiny', alias: 'Spends past its cap' });
  for (let i = 0; i < 6; i++) await complete(`pro-${i % 4}`, `A longer question number ${i} about the history of tollgates in Europe, please answer.`, i % 2 ? 'mistral' : 'gpt-3.5-turbo');
  for (let i = 0; i < 5; i++) await complete(`free-${i}`, `Hi ${i}`);
  for (let i = 0; i < 3; i++) await complete(`walk-in-${i}`, 'A walk-in on the default budget.');
  // over-cap crosses its soft budget and its cap, then is refused.
  for (let n = 0; n < 10 && (await refusedStatus('over-cap')) === 200; n++);
  expect(await refusedStatus('over-cap')).toBe(429);
  expect(await refusedStatus('over-cap')).toBe(429);
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
});

describe('admin UI', () => {
  it('serves the built page at /ui without a key, and nothing else without one', async () => {
    const html = await fetch(`${gateway.url}/ui/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(await html.text()).toContain('<div id="root">');
    const redirect = await fetch(`${gateway.url}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect((await fetch(`${gateway.url}/ui/missing.js`)).status).toBe(404);
    expect((await fetch(`${gateway.url}/budget/list`)).status).toBe(401);
  });

  it('signs in with a key, refusing a wrong one in the page, and lands on the overview', async () => {
    await page.goto(`${gateway.url}/ui/`);
    await page.getByLabel('API key').fill('sk-wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/Authentication failed/);
    await screenshot('01-sign-in-refused');

    await page.getByLabel('API key').fill('sk-1234');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await expect.poll(() => page.getByTestId('live-state').getAttribute('data-state')).toBe('live');
    expect(await page.evaluate("sessionStorage.getItem('tollgate.key')")).toBe('sk-1234');
  });

  it("shows overview totals equal to the ledger, who spent most, and who was refused today and why", async () => {
    await open('#/overview', 'Overview');
    const rows = await ledger();
    const total = rows.reduce((sum, row) => sum + row.cost, 0);
    await expect.poll(() => page.getByTestId('stat-30d').locator('.stat-value').textContent()).toBe(usd(total));
    expect(await page.getByTestId('stat-range').locator('.stat-value').textContent()).toBe(usd(total));
    expect(await page.getByTestId('stat-today').locator('.stat-value').textContent()).toBe(usd(total));
    expect(Number(await page.getByTestId('spend-chart').getAttribute('data-total'))).toBeCloseTo(total, 9);

    const byCustomer = new Map<string, number>();
    for (const row of rows) byCustomer.set(row.customerId ?? '', (byCustomer.get(row.customerId ?? '') ?? 0) + row.cost);
    const top = [...byCustomer].sort((a, b) => b[1] - a[1])[0]!;
    const firstTop = page.getByTestId('top-customers').locator('tbody tr').first();
    expect(await firstTop.getAttribute('data-customer')).toBe(top[0]);
    expect(await firstTop.textContent()).toContain(usd(top[1]));

    const refused = page.getByTestId('refused-today').locator('tr[data-refusal="budget_exceeded"]');
    await refused.first().waitFor();
    expect(await refused.first().textContent()).toContain('over-cap');
    expect(await refused.first().textContent()).toContain('Max budget $0.00003');
    expect(await page.getByTestId('refusals-by-reason').textContent()).toContain('Over budget');
    expect(await page.getByTestId('near-cap').locator('tr[data-customer="over-cap"]').textContent()).toContain('Over budget');
    await screenshot('02-overview');
  });

  it('marks the default budget with its true customer count and refuses to delete it', async () => {
    await open('#/budgets', 'Budgets');
    const row = page.locator('tr[data-budget="default-tier"]');
    expect(await row.locator('.pill.default').textContent()).toBe('Default');
    // Customers without a budget of their own (the 3 walk-ins) are under the default budget.
    expect(await row.getByTestId('customer-count').textContent()).toBe('3');
    await row.getByRole('button', { name: 'Delete default-tier' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete budget default-tier' });
    expect(await dialog.getByTestId('default-budget-refusal').textContent()).toContain('The default budget cannot be deleted.');
    expect(await dialog.getByRole('button', { name: /Delete/ }).count()).toBe(0);
    await screenshot('03-default-budget-delete-refused');
    await dialog.getByRole('button', { name: 'Close' }).last().click();
    // The API refuses too, so no other client can uncap the default customers.
    const viaApi = await graphql(gateway.url, 'mutation { deleteBudget(id: "default-tier", detach: true) { id } }');
    expect(viaApi.errors?.[0]?.extensions).toMatchObject({ status: 409 });
    expect((await api(gateway.url, 'POST', '/budget/info', { budgets: ['default-tier'] })).body).toHaveLength(1);
  });

  it('creates a pricing tier through "+ Create Budget", with refusals named by field (soft above max too)', async () => {
    await page.getByRole('button', { name: '+ Create Budget' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create budget' });
    await dialog.getByLabel('Budget ID').fill('my-free-tier');
    await dialog.getByLabel('Max budget (USD)').fill('-4');
    await dialog.getByLabel('Requests per minute').fill('sixty');
    await dialog.getByRole('button', { name: 'Create budget' }).click();
    await dialog.getByText('Requests per minute must be a whole number').waitFor();
    expect(await dialog.getByLabel('Requests per minute').getAttribute('aria-invalid')).toBe('true');
    const describedBy = await dialog.getByLabel('Requests per minute').getAttribute('aria-describedby');
    expect(await page.locator(`[id="${describedBy}"]`).textContent()).toContain('must be a whole number');
    await dialog.getByLabel('Requests per minute').fill('60');
    await dialog.getByRole('button', { name: 'Create budget' }).click();
    await dialog.getByText('Max budget: must be >= 0').first().waitFor();
    expect(await dialog.locator('.field.invalid input').getAttribute('name')).toBe('maxBudget');

    await dialog.getByLabel('Max budget (USD)').fill('2');
    await dialog.getByLabel('Soft budget (USD)').fill('5');
    await dialog.getByRole('button', { name: 'Create budget' }).click();
    await dialog.getByText('Soft budget must not be above the max budget').waitFor();
    await screenshot('04-create-budget-refused');

    await dialog.getByLabel('Max budget (USD)').fill('4');
    await dialog.getByLabel('Soft budget (USD)').fill('3');
    await dialog.getByLabel('Tokens per minute').fill('100000');
    await dialog.getByLabel('Parallel requests').fill('5');
    await dialog.getByLabel('Budget duration').fill('30d');
    await dialog.getByRole('button', { name: 'Create budget' }).click();
    await page.getByText('Created budget my-free-tier.').waitFor();
    expect(await page.locator('tr[data-budget="my-free-tier"]').textContent()).toContain('$4.00');
    const info = await api<Record<string, unknown>[]>(gateway.url, 'POST', '/budget/info', { budgets: ['my-free-tier'] });
    expect(info.body[0]).toMatchObject({ budget_id: 'my-free-tier', max_budget: 4, soft_budget: 3, rpm_limit: 60, tpm_limit: 100000, max_parallel_requests: 5, budget_duration: '30d' });
  });

  it('creates a budget by keyboard alone: focus lands in the form, stays in the dialog, and returns', async () => {
    await open('#/budgets', 'Budgets');
    await page.locator('body').focus();
    let found = false;
    for (let n = 0; n < 40 && !found; n++) {
      await page.keyboard.press('Tab');
      found = (await page.evaluate(() => document.activeElement?.textContent)) === '+ Create Budget';
    }
    expect(found).toBe(true);
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Create budget' });
    await dialog.waitFor();
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name)).toBe('id');
    await page.keyboard.type('kb-tier');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name)).toBe('maxBudget');
    await page.keyboard.type('7');
    // Tab around the whole dialog: focus never leaves it.
    for (let n = 0; n < 14; n++) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => Boolean(document.activeElement?.closest('[role="dialog"]')))).toBe(true);
    }
    await screenshot('05-keyboard-create');
    // Back to the id field and submit with Enter.
    await dialog.getByLabel('Budget ID').focus();
    await page.keyboard.press('Enter');
    await page.getByText('Created budget kb-tier.').waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('+ Create Budget');
    const info = await api<{ budget_id: string; max_budget: number }[]>(gateway.url, 'POST', '/budget/info', { budgets: ['kb-tier'] });
    expect(info.body[0]).toMatchObject({ budget_id: 'kb-tier', max_budget: 7 });
    // Escape closes a dialog and focus goes back to the button that opened it.
    await page.locator('tr[data-budget="kb-tier"]').getByRole('button', { name: 'Edit kb-tier' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'Edit budget kb-tier' }).waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Edit kb-tier');
  });

  it('moves the customers of a budget in use to another one before deleting it', async () => {
    await api(gateway.url, 'POST', '/customer/new', { user_id: 'on-kb', budget_id: 'kb-tier' });
    await page.reload();
    await page.locator('tr[data-budget="kb-tier"]').getByRole('button', { name: 'Delete kb-tier' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete budget kb-tier' });
    await dialog.getByLabel('Move its customers to').selectOption('pro');
    await dialog.getByRole('button', { name: 'Move 1 and delete' }).click();
    await page.getByText('Moved 1 customer(s) to pro and deleted budget kb-tier.').waitFor();
    expect((await api<{ budget_id: string }>(gateway.url, 'GET', '/customer/info?end_user_id=on-kb')).body.budget_id).toBe('pro');
  });

  it('lists customers with a truthful status, filters and sorts them, and keeps it all in the URL', async () => {
    await open('#/customers', 'Customers');
    await page.getByLabel('Status').selectOption('over_budget');
    await expect.poll(() => page.locator('tr[data-customer]').count()).toBe(1);
    expect(await page.locator('tr[data-customer="over-cap"] .pill').textContent()).toBe('Over budget');
    expect(page.url()).toContain('status=over_budget');
    await page.reload();
    await page.locator('tr[data-customer="over-cap"]').waitFor();
    expect(await page.locator('tr[data-customer]').count()).toBe(1);
    expect(await page.getByLabel('Status').inputValue()).toBe('over_budget');

    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Tier').selectOption('pro');
    await page.getByLabel('Sort').selectOption('spend_desc');
    await expect.poll(() => page.url()).toContain('sort=spend_desc');
    await expect.poll(() => page.locator('tr[data-customer]').count()).toBe(5);
    const spends = await page.locator('tr[data-customer] [data-testid="spend"]').allTextContents();
    const numbers = spends.map((text) => Number(text.replace(/[$,]/g, '')));
    expect([...numbers].sort((a, b) => b - a)).toEqual(numbers);
    await screenshot('06-customers-filtered');
  });

  it('blocks customers in bulk and unblocks them', async () => {
    await open('#/customers?tier=free', 'Customers');
    await page.locator('tr[data-customer="free-0"]').waitFor();
    await page.getByLabel('Select free-0').check();
    await page.getByLabel('Select free-1').check();
    await page.getByRole('button', { name: 'Block selected', exact: true }).click();
    await page.getByText('Blocked 2 customers.').waitFor();
    expect(await page.locator('tr[data-customer="free-1"] .pill').textContent()).toBe('Blocked');
    expect(await refusedStatus('free-1')).toBe(403);
    await page.getByLabel('Select free-0').check();
    await page.getByLabel('Select free-1').check();
    await page.getByRole('button', { name: 'Unblock selected' }).click();
    await page.getByText('Unblocked 2 customers.').waitFor();
    expect((await api<{ blocked: boolean }>(gateway.url, 'GET', '/customer/info?end_user_id=free-1')).body.blocked).toBe(false);
  });

  it('exports the filtered customer list as CSV', async () => {
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export CSV' }).click();
    const file = await download;
    const path = join(ARTIFACTS, 'customers.csv');
    await file.saveAs(path);
    const { readFileSync } = await import('node:fs');
    const lines = readFileSync(path, 'utf8').trim().split(/\r\n/);
    expect(lines[0]).toBe('customer_id,alias,status,budget_in_force,own_budget_id,spend_this_period_usd,max_budget_usd,resets_at');
    expect(lines.slice(1).map((line) => line.split(',')[0]).sort()).toEqual(['free-0', 'free-1', 'free-2', 'free-3', 'free-4', 'free-5']);
  });

  it("shows an over-budget customer as such, with its refused requests, remaining budget and reset", async () => {
    await open('#/customers/over-cap', /over-cap/);
    expect(await page.locator('h1 .pill').textContent()).toBe('Over budget');
    expect(await page.getByTestId('remaining').textContent()).toBe('$0.00 remaining');
    expect(await page.getByTestId('last-update').textContent()).toMatch(/^Resets /);
    const refused = page.getByTestId('refused-requests').locator('tr[data-refusal="budget_exceeded"]');
    await refused.first().waitFor();
    const text = await refused.first().textContent();
    expect(text).toContain('Over budget');
    expect(text).toContain('429');
    expect(text).toContain('Max budget $0.00003');
    expect(Number(await refused.first().locator('td[data-label="Times"]').textContent())).toBeGreaterThanOrEqual(2);
    expect(await page.getByTestId('periods').locator('tbody tr').count()).toBe(1);
    await screenshot('07-customer-over-budget');
  });

  it('keeps alert history across a reload (read from the database)', async () => {
    const history = page.getByTestId('alert-history');
    await expect.poll(() => history.locator('li[data-alert]').count()).toBeGreaterThan(0);
    const before = await history.locator('li[data-alert]').allTextContents();
    expect(before.join('\n')).toContain('Max budget of $0.00003 reached');
    expect(before.join('\n')).toContain('Soft budget of $0.00001 crossed');
    await page.reload();
    await history.locator('li[data-alert]').first().waitFor();
    expect(await history.locator('li[data-alert]').allTextContents()).toEqual(before);
  });

  it("shows a customer's spend live, edits its alias and tier, and records the change in its audit trail", async () => {
    await open('#/customers/free-2', /free-2/);
    await expect.poll(() => page.getByTestId('live-state').getAttribute('data-state')).toBe('live');
    const chartTotal = () => page.getByTestId('spend-chart').getAttribute('data-total').then(Number);
    const before = await chartTotal();
    await page.waitForTimeout(500); // the page's own subscription starts
    const { requestId } = await complete('free-2', 'And one more, with a longer prompt to cost a bit more than the others.');
    const spend = await customerSpend('free-2');
    await page.locator(`tr[data-request="${requestId}"]`).waitFor();
    await expect.poll(() => page.locator('.meter.large').getByTestId('spend').textContent()).toBe(usd(spend));
    await expect.poll(chartTotal).toBeGreaterThan(before);

    await page.getByRole('button', { name: 'Edit customer' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit customer free-2' });
    await dialog.getByLabel('Alias').fill('Second free one');
    await dialog.getByLabel('Tier').selectOption('pro');
    await dialog.getByRole('button', { name: 'Save customer' }).click();
    await page.getByText('Saved customer free-2.').waitFor();
    expect(await page.locator('.page-header p').first().textContent()).toBe('Second free one');
    const audit = page.getByTestId('audit-trail').locator('li[data-action="updated"]');
    await audit.first().waitFor();
    expect(await audit.first().textContent()).toContain('budgetId: free → pro');
    expect(await audit.first().textContent()).toContain('by litellm_proxy_admin_name');
    await screenshot('08-customer-page');
  });

  it('blocks and unblocks the customer from its page', async () => {
    await page.getByRole('button', { name: 'Block customer' }).click();
    await page.getByRole('button', { name: 'Unblock customer' }).waitFor();
    expect(await page.locator('h1 .pill').textContent()).toBe('Blocked');
    expect(await refusedStatus('free-2')).toBe(403);
    await page.getByRole('button', { name: 'Unblock customer' }).click();
    await page.getByRole('button', { name: 'Block customer' }).waitFor();
    expect((await api<{ blocked: boolean }>(gateway.url, 'GET', '/customer/info?end_user_id=free-2')).body.blocked).toBe(false);
  });

  it('searches and pages through customers, with the page in the URL', async () => {
    for (let i = 0; i < 23; i++) await api(gateway.url, 'POST', '/customer/new', { user_id: `acme-user-${String(i).padStart(2, '0')}`, alias: i === 7 ? 'Acme Seven' : undefined });
    await open('#/customers', 'Customers');
    await page.getByLabel('Search customers').fill('acme-user');
    const rows = page.locator('tr[data-customer]');
    await expect.poll(() => page.locator('.pager').textContent()).toContain('1–20 of 23');
    expect(await rows.count()).toBe(20);
    await page.getByRole('button', { name: 'Next →' }).click();
    await expect.poll(() => rows.count()).toBe(3);
    expect(await rows.first().getAttribute('data-customer')).toBe('acme-user-20');
    expect(page.url()).toContain('page=2');
    await page.reload();
    await expect.poll(() => rows.first().getAttribute('data-customer')).toBe('acme-user-20');
    await page.getByRole('button', { name: '← Previous' }).click();
    await expect.poll(() => rows.first().getAttribute('data-customer')).toBe('acme-user-00');
    await page.getByLabel('Search customers').fill('seven');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-customer')).toBe('acme-user-07');
    await page.getByLabel('Search customers').fill('nobody-like-this');
    await page.getByText('No customer matches').waitFor();
  });

  it('lists, creates and revokes keys, showing when each was last used', async () => {
    await open('#/keys', 'Keys');
    await page.getByRole('button', { name: '+ Create key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create key' });
    await dialog.getByLabel('Alias').fill('billing-service');
    await dialog.getByLabel(/Inference/).check();
    await dialog.getByRole('button', { name: 'Create key' }).click();
    const key = await page.getByTestId('new-key').inputValue();
    expect(key).toMatch(/^sk-tg-/);
    await page.getByRole('button', { name: 'Done' }).click();
    const row = page.locator('tr', { hasText: 'billing-service' });
    expect(await row.getByTestId('last-used').textContent()).toBe('Never');
    expect((await openaiClient(`${gateway.url}/v1`, key).chat.completions.create({ model: 'gpt-3.5-turbo', user: 'pro-0', messages: [{ role: 'user', content: 'hi' }] })).choices.length).toBe(1);
    await page.reload();
    await expect.poll(() => row.getByTestId('last-used').textContent()).not.toBe('Never');
    await screenshot('09-keys');
    await row.getByRole('button', { name: 'Revoke billing-service' }).click();
    await page.getByRole('dialog', { name: 'Revoke key billing-service' }).getByRole('button', { name: 'Revoke key' }).click();
    await page.getByText('Revoked key billing-service.').waitFor();
    const refused = await fetch(`${gateway.url}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
    expect(refused.status).toBe(401);
  });

  const PAGES: [string, string | RegExp, string][] = [
    ['#/overview', 'Overview', 'overview'],
    ['#/customers', 'Customers', 'customers'],
    ['#/customers/over-cap', /over-cap/, 'customer'],
    ['#/budgets', 'Budgets', 'budgets'],
    ['#/keys', 'Keys', 'keys'],
  ];

  it('has no serious or critical axe-core violation on any page', async () => {
    const found: Record<string, string[]> = {};
    for (const [hash, heading, name] of PAGES) {
      await open(hash, heading);
      found[name] = await seriousViolations();
    }
    await open('#/budgets', 'Budgets');
    await page.getByRole('button', { name: '+ Create Budget' }).click();
    await page.getByRole('dialog', { name: 'Create budget' }).waitFor();
    found['create-budget-dialog'] = await seriousViolations();
    await page.keyboard.press('Escape');
    expect(found).toEqual(Object.fromEntries(Object.keys(found).map((name) => [name, []])));
  });

  it('works at 390 px: no horizontal scroll, every page readable', async () => {
    await page.setViewportSize(PHONE);
    try {
      for (const [hash, heading, name] of PAGES) {
        await open(hash, heading);
        expect(await horizontalOverflow(), `${name} scrolls sideways at 390 px`).toBe(0);
        await screenshot(`10-phone-${name}`);
      }
      expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
      await page.getByRole('button', { name: 'Sign out' }).scrollIntoViewIfNeeded();
      const box = await page.getByRole('button', { name: 'Sign out' }).boundingBox();
      expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
    } finally {
      await page.setViewportSize(DESKTOP);
    }
  });

  it('goes back to sign-in when signing out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('tollgate.key')")).toBeNull();
    await screenshot('11-sign-in');
  });
});
