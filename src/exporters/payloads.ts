/**
 * @module What each exporter sends for one metered request, built when the request enters
 * the ledger (so a retry sends exactly the same event). The request id is the event's
 * identity everywhere: Stripe's `identifier`, the CloudEvent `id`.
 */
import { createHash } from 'node:crypto';
import type { SpendRecord } from '../ledger/types';
import { picoToDecimalString } from '../shared/money';
import { CHARGE_UNITS, type ExporterSettings, type OpenMeterExporterSettings, type StripeExporterSettings } from './settings';

/** A Stripe meter event without the customer's Stripe id, which is looked up when it is sent. */
export interface StripeMeterEventBody {
  event_name: string;
  identifier: string;
  /** Unix seconds: when the request was metered. */
  timestamp: number;
  /** An integer, as a decimal string (Stripe's wire format). */
  value: string;
}

/** Integer division rounding half up: per-event rounding of a charge to the chosen unit. */
function roundedDivision(value: bigint, divisor: bigint): bigint {
  return (value + divisor / 2n) / divisor;
}

export function stripeValue(record: SpendRecord, settings: StripeExporterSettings): bigint {
  switch (settings.value) {
    case 'charge':
      return roundedDivision(record.chargePico, CHARGE_UNITS[settings.unit]);
    case 'prompt_tokens':
      return BigInt(record.promptTokens);
    case 'completion_tokens':
      return BigInt(record.completionTokens);
    case 'total_tokens':
      return BigInt(record.promptTokens + record.completionTokens);
    case 'cached_prompt_tokens':
      return BigInt(record.cachedPromptTokens);
  }
}

/** Stripe's limit on `identifier`. */
const MAX_IDENTIFIER_LENGTH = 100;

/**
 * The request id (with `:<suffix>` when several meters are fed); a longer one than Stripe
 * accepts becomes its SHA-256 (hex, 64 characters): still stable across retries, still unique.
 */
export function stripeIdentifier(requestId: string, suffix: string | null): string {
  const identifier = suffix ? `${requestId}:${suffix}` : requestId;
  return identifier.length <= MAX_IDENTIFIER_LENGTH ? identifier : createHash('sha256').update(identifier).digest('hex');
}

export function stripeMeterEvent(record: SpendRecord, settings: StripeExporterSettings): StripeMeterEventBody {
  const identifier = stripeIdentifier(record.requestId, settings.identifierSuffix);
  return { event_name: settings.eventName, identifier, timestamp: Math.floor(record.createdAtMs / 1000), value: stripeValue(record, settings).toString() };
}

/** A CloudEvents 1.0 event (structured JSON), OpenMeter's ingest format. */
export function openMeterEvent(record: SpendRecord, settings: OpenMeterExporterSettings) {
  return {
    specversion: '1.0',
    id: record.requestId,
    source: settings.source,
    type: settings.eventType,
    subject: record.customerId,
    time: new Date(record.createdAtMs).toISOString(),
    datacontenttype: 'application/json',
    data: {
      model: record.model,
      provider: record.provider,
      endpoint: record.endpoint,
      prompt_tokens: record.promptTokens,
      completion_tokens: record.completionTokens,
      total_tokens: record.promptTokens + record.completionTokens,
      cached_prompt_tokens: record.cachedPromptTokens,
      cache_write_tokens: record.cacheWriteTokens,
      // Exact decimal USD strings (a JSON number would round them).
      cost: picoToDecimalString(record.costPico),
      charge: picoToDecimalString(record.chargePico),
      status: record.status,
    },
  };
}

export function exportBody(record: SpendRecord, settings: ExporterSettings): string {
  return JSON.stringify(settings.type === 'stripe' ? stripeMeterEvent(record, settings) : openMeterEvent(record, settings));
}
