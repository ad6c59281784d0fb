/// <reference lib="dom" />
/**
 * The admin UI in headless Chromium, continued: an over-budget customer reads "Over budget"
 * with its refused requests listed, alert history survives a reload, live spend, editing a
 * customer and its audit trail, search and pages, keys with last use, and the 390 px layout has no horizontal scroll.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { api, openaiClient } from './support/gateway';
import { complete, customerSpend, DESKTOP, horizontalOverflow, open, PAGES, PHONE, refusedStatus, screenshot, setUpConsole, type ConsoleUnderTest } from './support/ui-console';
import { usd } from '../ui/src/format';

const ui = setUpConsole({ signIn: true });
let page: Page;
let gateway: ConsoleUnderTest['gateway'];
beforeAll(() => {
  page = ui.page;
  gateway = ui.gateway;
});

describe('admin UI: customers, keys, accessibility, phone', () => {
  it("shows an over-budget customer as such, with its refused requests, remaining budget and reset", async () => {
    await open('#/customers/over-cap', /over-cap/);
    expect(await page.locator('h1 .pill').textContent()).toBe('Over budget');
    expect(await page.getByTestId('remaining').textContent()).toBe('$0.00 remaining');
    expect(await page.getByTestId('last-update').textContent()).toMatch(/^Resets /);
    const refused = page.getByTestId('refused-requests').locator('tr[data-refusal="budget_exceeded"]');
    await refused.first().waitFor();
    const text = await refused.first().textContent();
    expect(text).toContain('Over budget');
    expect(text).toContain('402');
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

  it('creates a key bound to a customer, whose requests are that customer whatever they name', async () => {
    await open('#/keys', 'Keys');
    await page.getByRole('button', { name: '+ Create key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create key' });
    await dialog.getByLabel('Alias').fill('pro-1-phone-app');
    await dialog.getByLabel(/Inference/).check();
    await dialog.getByLabel('Bound customer (optional)').fill('pro-1');
    await dialog.getByRole('button', { name: 'Create key' }).click();
    const key = await page.getByTestId('new-key').inputValue();
    await page.getByRole('button', { name: 'Done' }).click();
    const row = page.locator('tr', { hasText: 'pro-1-phone-app' });
    expect(await row.getByTestId('bound-customer').textContent()).toBe('pro-1');
    const before = await customerSpend('pro-1');
    const client = openaiClient(`${gateway.url}/v1`, key);
    await client.chat.completions.create({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hi' }] });
    expect(await customerSpend('pro-1')).toBeGreaterThan(before);
    await expect(client.chat.completions.create({ model: 'gpt-3.5-turbo', user: 'pro-2', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 403 });
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
});
