/// <reference lib="dom" />
/**
 * The console's prepaid credits, in headless Chromium: an operator grants credits from the
 * customer page (bad input named at the field), watches the balance fall live as the
 * customer's requests are metered, and sees it stopped at zero; the same on a phone.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { api } from './support/gateway';
import { join } from 'node:path';
import { ARTIFACTS, DESKTOP, horizontalOverflow, open, PHONE, refusedStatus, screenshot, seriousViolations, setUpConsole, type ConsoleUnderTest } from './support/ui-console';
import { usd } from '../ui/src/format';

const ui = setUpConsole({ signIn: true });
let page: Page;
let gateway: ConsoleUnderTest['gateway'];
beforeAll(async () => {
  page = ui.page;
  gateway = ui.gateway;
  expect((await api(gateway.url, 'POST', '/budget/new', { budget_id: 'resale-prepaid', price_multiplier: 1.3, prepaid: true })).status).toBe(200);
  expect((await api(gateway.url, 'POST', '/customer/new', { user_id: 'acme', alias: 'Acme (prepaid)', budget_id: 'resale-prepaid' })).status).toBe(200);
});

async function balance(): Promise<{ balance: number; consumed: number; granted: number }> {
  return (await api<{ balance: number; consumed: number; granted: number }>(gateway.url, 'GET', '/customer/credits?end_user_id=acme')).body;
}

describe('admin UI: prepaid credits', () => {
  it('grants credits from the customer page, naming a bad amount at its field', async () => {
    await open('#/customers/acme', /acme/);
    const card = page.getByTestId('credits');
    await card.getByText('No credits granted yet.').waitFor();
    expect(await card.getByTestId('credit-balance').textContent()).toBe('$0.00');
    await card.getByTestId('credits-exhausted').waitFor();
    const form = page.getByRole('form', { name: 'Grant credits' });
    await form.getByLabel('Amount (USD)').fill('-3');
    await form.getByRole('button', { name: 'Grant credits' }).click();
    await form.getByText('Amount must be a number of dollars above zero').waitFor();
    await form.getByLabel('Amount (USD)').fill('0.0006');
    await form.getByLabel('Reference').fill('invoice-1001');
    await form.getByRole('button', { name: 'Grant credits' }).click();
    await form.getByText('Granted $0.0006 (invoice-1001).').waitFor();
    expect(await card.getByTestId('credit-balance').textContent()).toBe(usd(0.0006));
    expect(await card.locator('tr[data-grant="invoice-1001"] td[data-label="Status"]').textContent()).toBe('active');
    // The same reference again grants nothing new.
    await form.getByLabel('Amount (USD)').fill('0.0006');
    await form.getByLabel('Reference').fill('invoice-1001');
    await form.getByRole('button', { name: 'Grant credits' }).click();
    await form.getByText('Reference invoice-1001 had granted already').waitFor();
    expect((await balance()).granted).toBe(0.0006);
    expect(await card.locator('tr[data-grant]').count()).toBe(1);
    expect(await seriousViolations()).toEqual([]);
    // The grant is in the customer's audit trail.
    await page.getByTestId('audit-trail').locator('li[data-action="credits_granted"]').waitFor();
    expect(await page.getByTestId('audit-trail').locator('li[data-action="credits_granted"]').count()).toBe(1);
    await screenshot('20-customer-credits');
  });

  it('shows the balance fall live with each request, then the customer stopped at zero', async () => {
    await expect.poll(() => page.getByTestId('live-state').getAttribute('data-state')).toBe('live');
    await page.waitForTimeout(500); // the page's own subscription starts
    const card = page.getByTestId('credits');
    expect(await refusedStatus('acme')).toBe(200);
    const afterOne = await balance();
    expect(afterOne.balance).toBeLessThan(0.0006);
    await expect.poll(() => card.getByTestId('credit-balance').textContent()).toBe(usd(afterOne.balance));
    let status = 200;
    for (let i = 0; i < 100 && status === 200; i++) status = await refusedStatus('acme');
    expect(status).toBe(402);
    const final = await balance();
    expect(final.balance).toBeLessThanOrEqual(0);
    await expect.poll(() => card.getByTestId('credit-consumed').textContent()).toBe(usd(final.consumed));
    await card.getByTestId('credits-exhausted').waitFor();
    expect(await card.getByTestId('credit-balance').textContent()).toBe(final.balance < 0 ? `−${usd(-final.balance)}` : usd(final.balance));
    expect(await card.locator('tr[data-grant="invoice-1001"] td[data-label="Status"]').textContent()).toBe('exhausted');
    await screenshot('21-customer-credits-exhausted');
  });

  it('fits a phone: no horizontal scroll, the grant form usable', async () => {
    await page.setViewportSize(PHONE);
    await open('#/customers/acme', /acme/);
    await page.getByTestId('credits').getByTestId('credit-balance').waitFor();
    expect(await horizontalOverflow()).toBeLessThanOrEqual(0);
    const form = page.getByRole('form', { name: 'Grant credits' });
    await form.getByLabel('Amount (USD)').fill('1');
    await form.getByLabel('Reference').fill('invoice-1002');
    await form.getByRole('button', { name: 'Grant credits' }).click();
    await form.getByText('Granted $1.00 (invoice-1002).').waitFor();
    expect(await refusedStatus('acme')).toBe(200);
    await screenshot('22-customer-credits-phone');
    await page.getByTestId('credits').screenshot({ path: join(ARTIFACTS, '23-credits-card-phone.png') });
    await page.setViewportSize(DESKTOP);
  });
});
