/**
 * A customer deleted while one of its streams runs, then created again under the same id
 * (LiteLLM's users reset a customer's spend that way): the stream is billed, and the customer
 * created again starts from zero, in the live counter and in the store alike (read back after
 * a restart). The stream's late settlement does not bring the old counter back. With
 * in-process counters and with Redis.
 */
import { describe, expect, it } from 'vitest';
import { gatewayWithCounters } from './support/counter-gateway';
import { api, openaiClient } from './support/gateway';
import { ledgerRows } from './support/ledger';

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
});
