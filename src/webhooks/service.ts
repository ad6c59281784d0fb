/**
 * @module Webhook administration for GraphQL and REST: list deliveries by status, retry
 * failed ones, send a test event. Works through the database only, so a retry issued on any
 * process is picked up by whichever process's dispatcher polls next.
 */
import type { ServiceContext } from '../services/context';
import { GatewayError } from '../shared/errors';
import { deliveriesOf, listDeliveries, retryFailedDeliveries, type DeliveryCursor, type DeliveryRow, type DeliveryStatus } from './outbox';
import { eventIdFor, testPayload } from './payloads';
import { WebhookSender, type SendResult } from './sender';
import { parseWebhookSettings, type WebhookSettings } from './settings';
import { randomUUID } from 'node:crypto';

export interface DeliveryPage {
  rows: DeliveryRow[];
  hasMore: boolean;
  endCursor: string | null;
}

export interface TestEventResult {
  eventId: string;
  deliveries: ({ url: string } & SendResult)[];
}

export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

export class WebhookService {
  readonly settings: WebhookSettings;

  constructor(private readonly ctx: ServiceContext) {
    this.settings = parseWebhookSettings(ctx.config);
  }

  private get database() {
    return this.ctx.orm.em.getConnection().getKnex();
  }

  async deliveries(status: DeliveryStatus, first: number, after: string | null): Promise<DeliveryPage> {
    if (!DELIVERY_STATUSES.includes(status)) throw new GatewayError('bad_request', `status must be one of ${DELIVERY_STATUSES.join(', ')}.`, 'status');
    const rows = await listDeliveries(this.database, status, first + 1, after === null ? null : decodeCursor(after));
    const page = rows.slice(0, first);
    const last = page[page.length - 1];
    return { rows: page, hasMore: rows.length > first, endCursor: last ? encodeCursor(last) : null };
  }

  /** Retries the failed deliveries of one event (or of one URL of it); returns all its deliveries. */
  async retry(eventId: string, url: string | null): Promise<DeliveryRow[]> {
    const before = await deliveriesOf(this.database, eventId);
    if (!before.length) throw new GatewayError('not_found', `No webhook event with id ${eventId}.`, 'eventId');
    if (url !== null && !before.some((row) => row.url === url)) {
      throw new GatewayError('not_found', `Webhook event ${eventId} has no delivery to ${url}.`, 'url');
    }
    const retried = await retryFailedDeliveries(this.database, eventId, url, this.settings.retryMaxAgeMs);
    if (!retried) {
      const states = before.filter((row) => url === null || row.url === url).map((row) => `${row.url}: ${row.status}`);
      throw new GatewayError('conflict', `Nothing to retry: no failed delivery of ${eventId} (${states.join('; ')}); pending deliveries are retried automatically.`, 'eventId');
    }
    this.ctx.logger.info({ eventId, url, deliveries: retried }, 'webhook delivery retry requested');
    return deliveriesOf(this.database, eventId);
  }

  /** Retries every failed delivery; returns how many. */
  async retryAllFailed(): Promise<number> {
    const retried = await retryFailedDeliveries(this.database, null, null, this.settings.retryMaxAgeMs);
    if (retried) this.ctx.logger.info({ deliveries: retried }, 'retry of all failed webhook deliveries requested');
    return retried;
  }

  /** Sends one test event to every URL now (one attempt each, not through the outbox). */
  async sendTestEvent(): Promise<TestEventResult> {
    if (!this.settings.enabled) {
      throw new GatewayError('bad_request', 'Webhook alerting is not set up: add "webhook" to general_settings.alerting and set WEBHOOK_URL.', 'service');
    }
    const eventId = eventIdFor('webhook_test', randomUUID());
    const body = JSON.stringify(testPayload());
    const sender = new WebhookSender(this.settings.timeoutMs, this.settings.secret);
    try {
      const deliveries = await Promise.all(this.settings.urls.map(async (url) => ({ url, ...(await sender.send(url, eventId, body)) })));
      return { eventId, deliveries };
    } finally {
      await sender.close();
    }
  }
}

function encodeCursor(row: DeliveryRow): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.eventId, row.url])).toString('base64url');
}

function decodeCursor(cursor: string): DeliveryCursor {
  try {
    const [createdAt, eventId, url] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string, string];
    const date = new Date(createdAt);
    if (Number.isNaN(date.getTime()) || typeof eventId !== 'string' || typeof url !== 'string') throw new Error('bad cursor');
    return { createdAt: date, eventId, url };
  } catch {
    throw new GatewayError('bad_request', 'after is not a cursor returned by webhookDeliveries (pageInfo.endCursor).', 'after');
  }
}
