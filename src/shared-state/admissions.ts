/**
 * @module `Admissions` from a spend book and a rate limiter, one call after the other (the
 * in-process state, where nothing can interleave; Redis has its own single-script version).
 */
import type { AdmissionOutcome, AdmissionRequest, Admissions, RateLimiter, ReserveResult, SettledCounter, SettlementRequest, SpendBook } from './types';

export class ComposedAdmissions implements Admissions {
  constructor(
    private readonly spendBook: SpendBook,
    private readonly rateLimiter: RateLimiter,
  ) {}

  async admit(request: AdmissionRequest): Promise<AdmissionOutcome> {
    const results: ReserveResult[] = [];
    const giveBack = async () => {
      for (const claim of request.counters.slice(0, results.length)) await this.spendBook.release(claim.key, claim.amount, request.settlementId);
    };
    for (const [index, claim] of request.counters.entries()) {
      const result = await this.spendBook.reserve(claim.key, claim.amount, claim.limit, request.settlementId, { periodEndMs: claim.periodEndMs });
      if (result.outOfPeriod) {
        await giveBack();
        return { admitted: false, refusedBy: 'outOfPeriod', counter: index };
      }
      if (!result.admitted) {
        await giveBack();
        return { admitted: false, refusedBy: 'budget', counter: index, counters: [...results, result] };
      }
      results.push(result);
    }
    if (!request.rate) return { admitted: true, counters: results, rate: null };
    const { key, limits, estimatedTokens, nowMs } = request.rate;
    const rate = await this.rateLimiter.acquire(key, limits, estimatedTokens, nowMs, request.settlementId);
    if (!rate.ok) {
      await giveBack();
      return { admitted: false, refusedBy: 'rate', rate };
    }
    return { admitted: true, counters: results, rate };
  }

  async settle(settlement: SettlementRequest): Promise<SettledCounter[]> {
    const settled: SettledCounter[] = [];
    for (const { key, reservation, actual } of settlement.counters) {
      if (actual === null) {
        await this.spendBook.release(key, reservation, settlement.settlementId);
        settled.push({ spend: 0n, periodStartMs: key.periodStartMs });
      } else settled.push(await this.spendBook.commit(key, reservation, actual, settlement.settlementId));
    }
    if (settlement.rate) await this.rateLimiter.settle(settlement.rate.ticket, settlement.rate.actualTokens);
    return settled;
  }
}
