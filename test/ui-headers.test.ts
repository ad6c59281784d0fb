/**
 * The admin UI's security headers: a CSP that allows only what the built page needs, no
 * framing, no MIME sniffing, no referrer; and the page still signs in and goes live (its
 * graphql-ws WebSocket) in headless Chromium under that policy, with no CSP violation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startTestGateway } from './support/gateway';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let browser: Browser;

beforeAll(async () => {
  gateway = await startTestGateway();
  if (!existsSync(CHROMIUM)) throw new Error(`This test drives Debian's Chromium at ${CHROMIUM}: install it with "apt-get install chromium" (.ci/run does).`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
});

function directives(csp: string | null): Record<string, string> {
  return Object.fromEntries((csp ?? '').split(';').map((part) => part.trim()).filter(Boolean).map((part) => [part.split(/\s+/)[0]!, part.split(/\s+/).slice(1).join(' ')]));
}

describe('admin UI security headers', () => {
  it('sends CSP, frame, sniffing and referrer headers on the page, its assets and its 404s', async () => {
    const page = await fetch(`${gateway.url}/ui/`);
    const html = await page.text();
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    for (const response of [page, await fetch(gateway.url + asset), await fetch(`${gateway.url}/ui/missing.js`)]) {
      const csp = directives(response.headers.get('content-security-policy'));
      expect(csp['default-src']).toBe("'none'");
      expect(csp['script-src']).toBe("'self'");
      expect(csp['style-src']).toBe("'self'");
      expect(csp['connect-src']).toBe("'self'");
      expect(csp['frame-ancestors']).toBe("'none'");
      expect(csp['script-src']).not.toMatch(/unsafe/);
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('still signs in and goes live in Chromium, with no CSP violation', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    await page.addInitScript({
      content: "document.addEventListener('securitypolicyviolation', (event) => console.error('Content Security Policy violation: ' + event.violatedDirective + ' ' + event.blockedURI));",
    });
    await page.goto(`${gateway.url}/ui/`);
    await page.getByLabel('API key').fill('sk-1234');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Customers' }).waitFor();
    await expect.poll(() => page.getByTestId('live-state').getAttribute('data-state')).toBe('live');
    expect(violations).toEqual([]);
    await context.close();
  });

  it('refuses to be framed by another origin', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // The gateway's URL under another host name is another origin for the browser.
    await page.goto(`${gateway.url.replace('127.0.0.1', 'localhost')}/ui/missing.js`);
    await page.setContent(`<iframe id="ui" src="${gateway.url}/ui/"></iframe>`);
    const framed = await page.locator('#ui').elementHandle();
    const frame = await framed!.contentFrame();
    await frame!.waitForLoadState('load');
    // Chromium replaces a refused frame by its error page: the UI's root never appears.
    expect(frame!.url()).not.toBe(`${gateway.url}/ui/`);
    expect(await frame!.locator('#root').count()).toBe(0);
    await context.close();
  });
});
