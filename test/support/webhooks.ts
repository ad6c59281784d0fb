/**
 * Helpers shared by the webhook tests: config with webhook alerting, a chat completion that
 * reports its cost, and waiting until every delivery is settled.
 */
import type OpenAI from 'openai';
import { graphql, testConfigYaml } from './gateway';
import { until } from './poll';
import { dollarsToPico } from '../../src/shared/money';

export const SEED_KEYS = ['spend', 'max_budget', 'token', 'customer_id', 'user_id', 'team_id', 'user_email', 'key_alias', 'projected_exceeded_date', 'projected_spend', 'event', 'event_group', 'event_message'];
export const PROMPT = 'what time is it';

/** Short retry timings, so a test sees several attempts in a second or two. */
export const FAST_RETRIES = { webhook_initial_backoff_ms: 100, webhook_max_backoff_ms: 400, webhook_poll_interval_ms: 100, webhook_timeout_ms: 3000 };

export function webhookYaml(alertingArgs: Record<string, unknown>, options: { upstreamBase?: string; flushMs?: number } = {}): string {
  return testConfigYaml({
    upstreamBase: options.upstreamBase,
    extra: `  alerting: ["webhook"]
  alerting_args: ${JSON.stringify(alertingArgs)}
tollgate:
  ledger_flush_interval_ms: ${options.flushMs ?? 50}
`,
  });
}

/** One chat completion for `user` on the mock mistral model: its cost in pico-USD, or 'refused' (402, over budget). */
export async function chat(client: OpenAI, user: string, content = PROMPT): Promise<bigint | 'refused'> {
  try {
    const { response } = await client.chat.completions.create({ model: 'mistral', user, messages: [{ role: 'user', content }] }).withResponse();
    return dollarsToPico(response.headers.get('x-litellm-response-cost')!);
  } catch (error) {
    if ((error as { status?: number }).status === 402) return 'refused'; // budget_exceeded
    throw error;
  }
}

export function spendOf(result: bigint | 'refused'): bigint {
  if (result === 'refused') throw new Error('request was refused');
  return result;
}

/** Waits until every delivery is settled (a receiver counts an event before Tollgate records its answer). */
export async function waitForNoPendingDeliveries(base: string, timeoutMs = 30_000): Promise<void> {
  await until('no pending deliveries', async () => {
    const result = await graphql<{ webhookDeliveries: { nodes: unknown[] } }>(base, `{ webhookDeliveries(status: pending, first: 1) { nodes { eventId } } }`);
    return result.data?.webhookDeliveries.nodes.length === 0;
  }, { timeoutMs });
}

