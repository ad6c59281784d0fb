/// <reference lib="dom" />
/**
 * The admin UI at /ui in headless Chromium, used as an operator would (test/support/ui-console.ts
 * seeds a gateway with a default budget, tiers, traffic and a customer over its cap): sign-in,
 * the overview's totals equal the ledger, the default budget cannot be deleted, budgets are
 * created by mouse and by keyboard alone (focus trap and return), customers are filtered,
 * sorted, paged in the URL, blocked in bulk and exported; axe-core finds no serious or
 * critical violation on any page.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { api, graphql } from './support/gateway';
import { ARTIFACTS, ledger, open, PAGES, refusedStatus, screenshot, seriousViolations, setUpConsole, type ConsoleUnderTest } from './support/ui-console';
import { usd } from '../ui/src/format';

const ui = setUpConsole({ signIn: false });
let page: Page;
let gateway: ConsoleUnderTest['gateway'];
beforeAll(() => {
  page = ui.page;
  gateway = ui.gateway;
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
    // The tier filter's answer (5 rows, by id) is on the page until the sorted one lands.
    const shownSpends = async () => (await page.locator('tr[data-customer] [data-testid="spend"]').allTextContents()).map((text) => Number(text.replace(/[$,]/g, '')));
    await expect.poll(async () => { const numbers = await shownSpends(); return numbers.length === 5 && numbers.every((n, i) => i === 0 || numbers[i - 1]! >= n); }).toBe(true);
    const numbers = await shownSpends();
    expect(new Set(numbers).size).toBeGreaterThan(1);
    await screenshot('06-customers-filtered');
  });

  it('blocks customers in bulk and unblocks them', async () => {
    await open('#/customers?tier=free', 'Customers');
    await page.locator('tr[data-customer="free-0"]').waitFor();
    await page.getByLabel('Select free-0').check();
    await page.getByLabel('Select free-1').check();
    await page.getByRole('button', { name: 'Block selected', exact: true }).click();
    await page.getByText('Blocked 2 customers.').waitFor();
    // The message shows once the block is done; the list's reload that shows it lands after.
    await expect.poll(() => page.locator('tr[data-customer="free-1"] .pill').textContent()).toBe('Blocked');
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

  it('goes back to sign-in when signing out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('tollgate.key')")).toBeNull();
    await screenshot('11-sign-in');
  });
});
