/**
 * @module What the in-flight journal records of an admitted request, and what a restart does
 * with the requests a killed process left in flight. A stream is charged like one that ended
 * early (the prompt and the tokens delivered, `partial`, `estimated`); every reservation and
 * rate-limit ticket the dead process held is given back at once instead of at lease expiry.
 * A request that did settle before the kill keeps its own ledger row and is never charged again.
 */
import type { Logger } from 'pino';
import { costOf, type TokenUsage } from '../pricing/prices';
import { countTextTokens } from '../pricing/tokens';
import { InFlightJournal, type InFlightSnapshot } from '../ledger/in-flight-journal';
import type { Ledger } from '../ledger/ledger';
import type { SpendRecord } from '../ledger/types';
import type { RateLimiter, SpendBook } from '../shared-state/types';

/** What a stream relay exposes of its progress (a provider's stream translator is one). */
export interface DeliverySource {
  readonly deliveredText: string;
  readonly usage: TokenUsage | null;
  readonly usageComplete: boolean;
}

/**
 * Counts the delivered text's tokens as it grows, re-tokenizing only what is new: the text up
 * to its last word boundary is counted once (tokenizers split words there, so the pieces add up
 * to the whole's count), only the unfinished word after it is counted again on each call.
 */
export class DeliveredTokenCounter {
  private countedChars = 0;
  private countedTokens = 0;
  private lastLength = -1;
  private lastTotal = 0;
  /** A tail longer than this (text without spaces) is counted as it stands. */
  private static readonly MAX_TAIL = 4096;

  count(text: string): number {
    if (text.length === this.lastLength) return this.lastTotal;
    let boundary = lastWhitespace(text, this.countedChars);
    if (boundary <= this.countedChars && text.length - this.countedChars > DeliveredTokenCounter.MAX_TAIL) boundary = text.length;
    if (boundary > this.countedChars) {
      this.countedTokens += countTextTokens(text.slice(this.countedChars, boundary));
      this.countedChars = boundary;
    }
    this.lastLength = text.length;
    this.lastTotal = this.countedTokens + countTextTokens(text.slice(this.countedChars));
    return this.lastTotal;
  }
}

/**
 * Index of the last space at or after `from` that follows a non-space (where tokenizers start
 * a new word: " word"), or -1. Not before newlines or runs of spaces, which they merge.
 */
function lastWhitespace(text: string, from: number): number {
  for (let index = text.length - 1; index > from; index--) {
    if (text.charCodeAt(index) !== 32) continue;
    const before = text.charCodeAt(index - 1);
    if (before !== 32 && before !== 10 && before !== 9 && before !== 13) return index;
  }
  return -1;
}

/** The usage a stream that ends now would be charged (as the relay settles one that ends early). */
export function deliveredUsage(source: DeliverySource, counter: DeliveredTokenCounter, promptTokens: number): TokenUsage | null {
  const reported = source.usage;
  if (reported && source.usageComplete) return reported;
  const deliveredTokens = counter.count(source.deliveredText);
  if (!reported && deliveredTokens === 0) return null;
  return reported ? { ...reported, completionTokens: Math.max(reported.completionTokens, deliveredTokens) } : { promptTokens, completionTokens: deliveredTokens };
}

export interface InterruptedRecovery {
  journal: InFlightJournal;
  ledger: Ledger;
  spendBook: SpendBook;
  rateLimiter: RateLimiter;
  logger: Logger;
}

/**
 * Settles the requests dead processes left in flight: charges the streams that had delivered
 * tokens (new ledger rows only: one that settled before the kill has its row already) and
 * releases every other reservation. Returns the new rows, for the shared counters to count
 * (the caller replays them with the crash journal's records, which end their leases).
 */
export async function recoverInterrupted({ journal, ledger, spendBook, rateLimiter, logger }: InterruptedRecovery): Promise<SpendRecord[]> {
  const charged: SpendRecord[] = [];
  for (const orphan of journal.orphaned()) {
    const candidates = orphan.requests.filter((request) => request.delivered).map(partialRecordOf);
    const inserted = await ledger.recordInterrupted(candidates);
    const insertedIds = new Set(inserted.map((record) => record.requestId));
    const settledBefore = await ledger.settledAmong(orphan.requests.filter((r) => !insertedIds.has(r.requestId)).map((r) => r.requestId));
    for (const request of orphan.requests) {
      const chargedNow = insertedIds.has(request.requestId);
      // Settled before the kill: its settlement ended its leases and ticket (or the journal
      // replay will); touching them again could undo a true-up.
      if (!chargedNow && settledBefore.has(request.requestId)) continue;
      if (!chargedNow && request.customerId) {
        for (const reservation of request.reservations) {
          const key = { customerId: request.customerId, scope: reservation.scope, periodStartMs: reservation.periodStartMs };
          await spendBook.release(key, BigInt(reservation.amountPico), request.requestId);
        }
      }
      if (request.rateTicket) {
        const usage = request.delivered;
        await rateLimiter.settle({ ...request.rateTicket }, chargedNow && usage ? usage.promptTokens + usage.completionTokens : 0);
      }
    }
    charged.push(...inserted);
    InFlightJournal.discard(orphan.path);
    if (orphan.requests.length) {
      logger.warn(
        { interrupted: orphan.requests.length, charged: inserted.length, released: orphan.requests.length - inserted.length - settledBefore.size },
        'settled the requests a killed process left in flight: streams charged what they had delivered, reservations given back',
      );
    }
  }
  return charged;
}

function partialRecordOf(request: InFlightSnapshot): SpendRecord {
  const delivered = request.delivered!;
  return {
    requestId: request.requestId,
    customerId: request.customerId,
    apiKeyId: request.apiKeyId,
    keyAlias: request.keyAlias,
    model: request.model,
    deploymentId: request.deploymentId,
    provider: request.provider,
    endpoint: request.endpoint,
    promptTokens: delivered.promptTokens,
    completionTokens: delivered.completionTokens,
    cachedPromptTokens: delivered.cachedPromptTokens,
    cacheWriteTokens: delivered.cacheWriteTokens,
    costPico: BigInt(delivered.costPico),
    chargePico: BigInt(delivered.chargePico ?? delivered.costPico),
    costSource: 'estimated',
    status: 'partial',
    periodStartMs: request.periodStartMs,
    counters: request.reservations.map((reservation) => ({ scope: reservation.scope, periodStartMs: reservation.periodStartMs })),
    createdAtMs: request.atMs,
    ...(request.customerOnRecord ? { customerOnRecord: true as const } : {}),
  };
}

/** A journal snapshot of an admitted request (pulled by the journal's timer, never on the hot path). */
export function snapshotOf(
  request: Omit<InFlightSnapshot, 'delivered' | 'atMs'>,
  delivery: { source: DeliverySource; counter: DeliveredTokenCounter; promptTokens: number; price: Parameters<typeof costOf>[0]; chargeOf: (usage: TokenUsage, cost: bigint) => bigint } | null,
  nowMs: number,
): InFlightSnapshot {
  const usage = delivery ? deliveredUsage(delivery.source, delivery.counter, delivery.promptTokens) : null;
  return {
    ...request,
    delivered: usage
      ? {
          promptTokens: usage.promptTokens,
          completionTokens: usage.completionTokens,
          cachedPromptTokens: usage.cachedPromptTokens ?? 0,
          cacheWriteTokens: usage.cacheWriteTokens ?? 0,
          costPico: costOf(delivery!.price, usage).toString(),
          chargePico: delivery!.chargeOf(usage, costOf(delivery!.price, usage)).toString(),
        }
      : null,
    atMs: nowMs,
  };
}
