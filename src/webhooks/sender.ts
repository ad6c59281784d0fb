/**
 * @module One HTTP POST of a webhook body to one URL, with undici and hard timeouts (connect,
 * headers, body, and the attempt as a whole), so a slow or silent receiver costs a bounded
 * time and no event-loop work. The response body is drained and discarded; 2xx is success,
 * anything else (including redirects, which are not followed) is a failure to retry.
 */
import { Agent, request } from 'undici';
import { webhookHeaders } from './signature';
import { describeAttemptError, withDeadline } from '../shared/deadline';

export interface SendResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
}

const MAX_ERROR_LENGTH = 500;

export class WebhookSender {
  private readonly agent: Agent;

  constructor(
    private readonly timeoutMs: number,
    private readonly secret: string | null,
  ) {
    this.agent = new Agent({
      connect: { timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  send(url: string, eventId: string, body: string): Promise<SendResult> {
    return withDeadline(this.timeoutMs, async (signal) => {
      try {
        const response = await request(url, {
          method: 'POST',
          headers: webhookHeaders(eventId, body, this.secret),
          body,
          dispatcher: this.agent,
          signal,
        });
        // Drain a little so the connection can be reused; a huge or stalled body is cut off.
        await response.body.dump({ limit: 64 * 1024, signal }).catch(() => undefined);
        const ok = response.statusCode >= 200 && response.statusCode < 300;
        return { ok, statusCode: response.statusCode, error: ok ? null : `receiver answered HTTP ${response.statusCode}` };
      } catch (error) {
        return { ok: false, statusCode: null, error: describeAttemptError(error, signal).slice(0, MAX_ERROR_LENGTH) };
      }
    });
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => this.agent.destroy());
  }
}
