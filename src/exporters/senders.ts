/**
 * @module One attempt to send one export: Stripe meter events through the official `stripe`
 * SDK, OpenMeter CloudEvents over HTTP (undici, with hard timeouts). Each returns success or
 * a short error to retry with; neither retries by itself (the outbox does, with backoff).
 */
import { Agent, request } from 'undici';
import type { ClaimedExport } from './outbox';
import type { StripeMeterEventBody } from './payloads';
import type { ExporterSettings, OpenMeterExporterSettings, StripeExporterSettings } from './settings';
import { describeAttemptError, describeError, withDeadline } from '../shared/deadline';

export interface ExportAttempt {
  ok: boolean;
  error: string | null;
}

export interface ExportSender {
  send(item: ClaimedExport): Promise<ExportAttempt>;
  close(): Promise<void>;
}

const MAX_ERROR_LENGTH = 500;

function failure(message: string): ExportAttempt {
  return { ok: false, error: message.slice(0, MAX_ERROR_LENGTH) };
}

/** The SDK (some 200 modules) is loaded with the first send, not by every process at start. */
async function newStripeClient(settings: StripeExporterSettings) {
  const { default: Stripe } = await import('stripe');
  return new Stripe(settings.apiKey, {
    host: settings.host,
    port: settings.port,
    protocol: settings.protocol,
    timeout: settings.timeoutMs,
    // Retries belong to the outbox (durable, with backoff); the identifier dedupes them at Stripe.
    maxNetworkRetries: 0,
  });
}

export class StripeSender implements ExportSender {
  private client: Promise<Awaited<ReturnType<typeof newStripeClient>>> | null = null;

  constructor(private readonly settings: StripeExporterSettings) {}

  async send(item: ClaimedExport): Promise<ExportAttempt> {
    if (!item.stripeCustomerId) {
      return failure(`customer ${item.customerId} has no stripe_customer_id: set it with POST /customer/update (or GraphQL updateCustomer), then it is sent`);
    }
    const event = JSON.parse(item.body) as StripeMeterEventBody;
    try {
      this.client ??= newStripeClient(this.settings);
      await (await this.client).billing.meterEvents.create({
        event_name: event.event_name,
        identifier: event.identifier,
        timestamp: event.timestamp,
        payload: { stripe_customer_id: item.stripeCustomerId, value: event.value },
      });
      return { ok: true, error: null };
    } catch (error) {
      const stripeError = error as { statusCode?: number; code?: string; message?: string };
      // Stripe refuses an identifier it already has: that event is in, so this one is delivered.
      if (stripeError.statusCode === 400 && /identifier/i.test(stripeError.message ?? '') && /(already|duplicate|exists)/i.test(stripeError.message ?? '')) {
        return { ok: true, error: null };
      }
      return failure(stripeError.statusCode ? `Stripe answered HTTP ${stripeError.statusCode}: ${stripeError.message}` : describeError(error));
    }
  }

  async close(): Promise<void> {}
}

export class OpenMeterSender implements ExportSender {
  private readonly agent: Agent;
  private readonly endpoint: string;

  constructor(private readonly settings: OpenMeterExporterSettings) {
    this.endpoint = `${settings.url}/api/v1/events`;
    this.agent = new Agent({ connect: { timeout: settings.timeoutMs }, headersTimeout: settings.timeoutMs, bodyTimeout: settings.timeoutMs });
  }

  send(item: ClaimedExport): Promise<ExportAttempt> {
    const headers: Record<string, string> = { 'content-type': 'application/cloudevents+json' };
    if (this.settings.apiKey) headers.authorization = `Bearer ${this.settings.apiKey}`;
    return withDeadline(this.settings.timeoutMs, async (signal) => {
      try {
        const response = await request(this.endpoint, { method: 'POST', headers, body: item.body, dispatcher: this.agent, signal });
        const text = await response.body.text().catch(() => '');
        if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, error: null };
        return failure(`OpenMeter answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
      } catch (error) {
        return failure(describeAttemptError(error, signal));
      }
    });
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => this.agent.destroy());
  }
}

export function senderFor(settings: ExporterSettings): ExportSender {
  return settings.type === 'stripe' ? new StripeSender(settings) : new OpenMeterSender(settings);
}
