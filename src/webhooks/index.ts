/**
 * @module Wires budget alerts and webhooks into a gateway: checks their settings (before any
 * port opens), hooks the ledger so each batch's transaction also records its alerts and
 * outbox events, and runs the dispatcher. Registered before the ledger's crash recovery,
 * so requests replayed from the journal get their events too.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { BudgetAlertDetector, type BatchAlerts } from '../alerts/detector';
import { parseAlertSettings } from '../alerts/settings';
import { detectCreditAlerts } from '../alerts/credits';
import type { GatewayConfig } from '../config/load';
import type { BudgetEventBus } from '../ledger/events';
import type { Ledger } from '../ledger/ledger';
import type { SpendRecord } from '../ledger/types';
import type { Logger } from '../observability/logger';
import { WebhookDispatcher } from './dispatcher';
import { enqueueEvents, type OutboxEvent } from './outbox';
import { budgetAlertPayload, spendTrackedEventId, spendTrackedPayload } from './payloads';
import { WebhookSender } from './sender';
import { parseWebhookSettings, type WebhookSettings } from './settings';

export interface Alerting {
  settings: WebhookSettings;
  start(): void;
  stop(): Promise<void>;
}

/** Throws a ConfigError naming the key when an alerting setting is wrong (call before opening anything). */
export function checkAlertingSettings(config: GatewayConfig): void {
  parseAlertSettings(config);
  parseWebhookSettings(config);
}

export function setUpAlerting(options: { config: GatewayConfig; orm: MikroORM; ledger: Ledger; budgetEvents: BudgetEventBus; logger: Logger; now: () => Date }): Alerting {
  const { config, orm, ledger, budgetEvents, logger, now } = options;
  const { thresholds } = parseAlertSettings(config);
  const settings = parseWebhookSettings(config);
  if (!settings.enabled && config.webhookUrls.length) logger.warn('WEBHOOK_URL is set but general_settings.alerting does not include "webhook": no webhooks are sent');
  const detector = new BudgetAlertDetector(thresholds, config.defaultBudgetId ?? null, budgetEvents, logger, now);
  const dispatcher = settings.enabled
    ? new WebhookDispatcher(() => orm.em.getConnection().getKnex(), new WebhookSender(settings.timeoutMs, settings.secret), settings, logger)
    : null;

  ledger.addCommitHook(async (transaction, inserted) => {
    const batch = await detector.detect(transaction, inserted);
    batch.alerts.push(...(await detectCreditAlerts(transaction, inserted, config.creditsLowThreshold, now())));
    let enqueued = 0;
    if (dispatcher) enqueued = await enqueueEvents(transaction, outboxEvents(batch, inserted, settings, now()), settings.urls, settings.retryMaxAgeMs);
    if (!batch.alerts.length && !enqueued) return;
    return () => {
      detector.publish(batch.alerts);
      if (enqueued) dispatcher?.wake();
    };
  });

  return {
    settings,
    start: () => dispatcher?.start(),
    stop: async () => {
      await dispatcher?.stop();
    },
  };
}

function outboxEvents(batch: BatchAlerts, inserted: SpendRecord[], settings: WebhookSettings, createdAt: Date): OutboxEvent[] {
  const events: OutboxEvent[] = [];
  if (settings.sendSpendTracked) {
    for (const record of inserted) {
      if (!record.customerId) continue; // event_group "customer": requests without a customer have none
      const maxBudget = batch.budgets.get(record.customerId)?.maxBudgetPico ?? null;
      events.push({
        eventId: spendTrackedEventId(record.requestId),
        eventType: 'spend_tracked',
        customerId: record.customerId,
        body: JSON.stringify(spendTrackedPayload(record, maxBudget)),
        createdAt,
      });
    }
  }
  for (const { event, record } of batch.alerts) {
    events.push({ eventId: event.eventId, eventType: event.type, customerId: event.customerId, body: JSON.stringify(budgetAlertPayload(event, record)), createdAt });
  }
  return events;
}
