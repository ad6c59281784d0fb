/**
 * A customer deleted while one of its streams runs, then created again under the same id
 * (LiteLLM's users reset a customer's spend that way): the stream is billed, and the customer
 * created again starts from zero, in the live counter and in the store alike (read back after
 * a restart). The stream's late settlement does not bring the old counter back, and neither
 * does a later budget change, whose new period is summed from the ledger: the rows before the
 * delete are the old customer's. With in-process counters and with Redis.
 */
import { describe, expect, it } from 'vitest';
import { gatewayWithCounters } from './support/counter-gateway';
import { api, openaiClient } from './support/gateway';
import { ledgerRows } from './support/ledger';
import { picoToDollars } from '../src/shared/money';

describe.each(['in-process', 'redis'] as const)('a customer deleted while its stream runs, %s counters', (counters) => {
  const g = gatewayWithCounters(counters);

  it('bills the stream, and starts the customer created again from zero, live and after a restart', async () => {
    const client = openaiClient(`${g.gateway.url}/v1`);
    const messages = [{ role: 'user' as const, content: 'tell me a story' }];
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'phoenix', max_budget: 100 })).status).toBe(200);
    await client.chat.completions.create({ model: 'upstream-gpt', user: 'phoenix', messages });

    g.upstream.behavior.pauseAfterChunks = 2;
    const stream = await client.chat.completions.create({ model: 'upstream-gpt', user: 'phoenix', stream: true, messages });
    let chunks = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content && ++chunks === 2) {
        expect((await api(g.gateway.url, 'POST', '/customer/delete', { user_ids: ['phoenix'] })).status).toBe(200);
        g.upstream.resume();
      }
    }
    const rows = await ledgerRows(g.gateway, 'phoenix');
    expect(rows).toHaveLength(2); // the stream is charged all the same

    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'phoenix', max_budget: 100 })).status).toBe(200);
    expect(await g.spendOf('phoenix')).toBe(0n);
    await client.chat.completions.create({ model: 'upstream-gpt', user: 'phoenix', messages });
    const after = (await ledgerRows(g.gateway, 'phoenix'))[2]!.cost;
    expect(await g.spendOf('phoenix')).toBe(after);
    // Restarted, the counter is read from the store (Redis's lost too).
    await g.restart();
    expect(await g.spendOf('phoenix')).toBe(after);
  });

  it('does not count the old customer\'s spend when the new one\'s budget period changes (its own budget, then a tier)', async () => {
    const client = openaiClient(`${g.gateway.url}/v1`);
    const messages = [{ role: 'user' as const, content: 'once more' }];
    const spendOnce = async () => {
      await client.chat.completions.create({ model: 'upstream-gpt', user: 'lazarus', messages });
      return (await ledgerRows(g.gateway, 'lazarus')).at(-1)!.cost;
    };
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'lazarus', max_budget: 100 })).status).toBe(200);
    await spendOnce();
    await spendOnce();
    expect((await api(g.gateway.url, 'POST', '/customer/delete', { user_ids: ['lazarus'] })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/new', { user_id: 'lazarus', max_budget: 100 })).status).toBe(200);
    const mine = await spendOnce();
    expect(await g.spendOf('lazarus')).toBe(mine);

    // Its own budget gets a period (lifetime → monthly): the month is summed from the ledger.
    expect((await api(g.gateway.url, 'POST', '/customer/update', { user_id: 'lazarus', budget_duration: '1mo' })).status).toBe(200);
    expect(await g.spendOf('lazarus')).toBe(mine);
    // Moved onto a daily tier: today is summed from the ledger.
    expect((await api(g.gateway.url, 'POST', '/budget/new', { budget_id: 'lazarus-tier', max_budget: 100, budget_duration: '1d' })).status).toBe(200);
    expect((await api(g.gateway.url, 'POST', '/customer/update', { user_id: 'lazarus', budget_id: 'lazarus-tier' })).status).toBe(200);
    expect(await g.spendOf('lazarus')).toBe(mine);
    // The tier gets a per-model budget: its counter is summed from the ledger too. Four of
    // these requests fit; with the old customer's two counted, the second would be refused.
    const modelBudget = { 'upstream-gpt': { max_budget: Number(picoToDollars(4n * mine)), budget_duration: '1d' } };
    expect((await api(g.gateway.url, 'POST', '/budget/update', { budget_id: 'lazarus-tier', model_max_budget: modelBudget })).status).toBe(200);
    expect(await spendOnce()).toBe(mine);
    expect(await spendOnce()).toBe(mine);
    expect(await g.spendOf('lazarus')).toBe(3n * mine);
    await g.restart();
    expect(await g.spendOf('lazarus')).toBe(3n * mine);
  });
});
