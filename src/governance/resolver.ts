/**
 * @module The internal resolver: `authorize(request) → decision` and `settle(decision, usage)`.
 * The data plane calls it for every request; it decides from memory only (registry, spend
 * book, rate limiter) and meters through the ledger. Expected refusals are returned as
 * values, not thrown.
 */
import type { Deployment, FailMode } from '../config/load';
import { chargeOf } from '../pricing/customer-price';
import { costOf, type TokenUsage } from '../pricing/prices';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString, type Pico } from '../shared/money';
import type { Ledger } from '../ledger/ledger';
import type { SpendEventBus } from '../ledger/events';
import type { CostSource, CounterIncrement, SpendRecord } from '../ledger/types';
import type { Logger } from '../observability/logger';
import type { InFlightJournal } from '../ledger/in-flight-journal';
import { SharedStateCatchUp } from '../shared-state/catch-up';
import { ComposedAdmissions } from '../shared-state/admissions';
import {
  isSharedStateRefusal,
  type Admissions,
  type CounterClaim,
  type CounterKey,
  type RateDecision,
  type RateLimiter,
  type RateTicket,
  type SettlementRequest,
  type SpendBook,
} from '../shared-state/types';
import { currentPeriod, type Period } from './periods';
import type { BudgetRecord, CustomerRecord, ModelBudgetRecord, Principal } from './records';
import { CustomerCountersUnavailable } from './customer-cache';
import { MASTER_KEY_ID, type Registry } from './registry';
import { DeliveredTokenCounter, snapshotOf, type DeliverySource } from './in-flight';
import { CREDITS_SCOPE, creditLimit } from './credits';

export interface AuthorizeRequest {
  requestId: string;
  principal: Principal;
  customerId: string | null;
  model: string;
  deployment: Deployment;
  /** The route the request came in on (the ledger row's `endpoint`). */
  endpoint: 'chat' | 'embeddings' | 'responses' | 'messages';
  /** Counted (or estimated) prompt tokens. */
  promptTokens: number;
  /** max_completion_tokens / max_tokens when given, else the model's output cap. */
  maxCompletionTokens: number;
  /** What the client itself capped the output at, if it did. */
  requestedMaxTokens: number | null;
}

interface CounterReservation {
  key: CounterKey;
  amount: Pico;
}

export interface Decision {
  request: AuthorizeRequest;
  budget: BudgetRecord | null;
  period: Period;
  reservations: CounterReservation[];
  rateTicket: RateTicket | null;
  /** A bound key's own rpm window (per-key limits), settled beside the customer's. */
  keyRateTicket: RateTicket | null;
  /** x-ratelimit-end_user-* and x-tollgate-budget-remaining, for the response. */
  headers: Record<string, string>;
  settled: boolean;
  /** A prepaid customer's credits claim: its limit at admission and its place in `reservations`. */
  credits?: { limit: Pico; index: number } | null;
  /**
   * Set by a stream relay: what it has delivered so far, which the in-flight journal records
   * so a restart after a kill charges it.
   */
  delivery?: DeliverySource;
  /** The customer had a row in the store at admission (not the store-unreachable fallback). */
  customerOnRecord?: boolean;
}

export type Authorization = { ok: true; decision: Decision } | { ok: false; error: GatewayError };

export interface Settlement {
  costPico: Pico;
  /** What the customer is charged (x-litellm-response-cost): its tier's price, else the cost. */
  chargePico: Pico;
  periodSpendPico: Pico | null;
  /** What the customer's budget has left after this request (null: no dollar budget, or unknown). */
  budgetRemainingPico: Pico | null;
  /** A prepaid customer's credit balance after this request (null: not prepaid, or unknown). */
  creditsRemainingPico?: Pico | null;
}

export const OVERALL_SCOPE = '';
export const CREDITS_REMAINING_HEADER = 'x-tollgate-credits-remaining';
const MODEL_SCOPE_PREFIX = 'model:';
const KEY_SCOPE_PREFIX = 'key:';
export const modelScope = (model: string) => `${MODEL_SCOPE_PREFIX}${model}`;
/** A bound key's lifetime spend, counted under its customer (period start 0: it never resets). */
export const keyScope = (keyId: string) => `${KEY_SCOPE_PREFIX}${keyId}`;
const KEY_PERIOD_START_MS = 0;

function dollars(pico: Pico): string {
  return `$${picoToDecimalString(pico)}`;
}

export interface ResolverDependencies {
  registry: Registry;
  spendBook: SpendBook;
  rateLimiter: RateLimiter;
  /** Admission and settlement in one step each; by default composed of the two above. */
  admissions?: Admissions;
  ledger: Ledger;
  events: SpendEventBus;
  timezone: string;
  now?: () => Date;
  /** Counter updates the shared state could not take yet, retried until it can. */
  catchUp?: SharedStateCatchUp;
  /** While the shared counters are unreachable: refuse (`closed`) or serve unchecked (`open`). */
  failMode?: FailMode;
  /** Told of each request this process meters (metrics); must not block. */
  onMetered?: (record: SpendRecord) => void;
  logger?: Logger;
  /** Journals admitted requests until they settle, for a restart after `kill -9`. */
  inFlight?: InFlightJournal;
  /** A customer ID never seen before: create the customer (default) or refuse the request. */
  unknownCustomers?: UnknownCustomers;
  /**
   * The status of a budget refusal: 402 (default), which none of the OpenAI SDK, the Vercel AI
   * SDK, LangChain and the Anthropic SDK retries, or LiteLLM's 429 (which they all retry).
   */
  budgetExceededStatus?: 402 | 429;
  /**
   * Moves a customer's counter of a scope into its budget's current period, from the store's
   * sum since its start (SpendService.recompute): one an admission found in a period its
   * budget no longer has (AdmissionOutcome 'outOfPeriod').
   */
  moveCounter: (customerId: string, scope: string) => Promise<void>;
}

export type UnknownCustomers = 'create' | 'refuse';

export class InternalResolver {
  private readonly registry: Registry;
  private readonly spendBook: SpendBook;
  /** Only for a bound key's own rpm window; the customer's limits go through `admissions`. */
  private readonly rateLimiter: RateLimiter;
  private readonly admissions: Admissions;
  private readonly ledger: Ledger;
  private readonly events: SpendEventBus;
  private readonly timezone: string;
  private readonly now: () => Date;
  private readonly catchUp: SharedStateCatchUp;
  private readonly failMode: FailMode;
  private readonly onMetered: (record: SpendRecord) => void;
  private readonly logger: Logger | null;
  private readonly inFlight: InFlightJournal | null;
  private readonly unknownCustomers: UnknownCustomers;
  private readonly budgetExceededStatus: 402 | 429;
  private readonly moveCounter: (customerId: string, scope: string) => Promise<void>;
  /** Counter moves under way, one per counter however many requests found it out of period. */
  private readonly movingCounters = new Map<string, Promise<void>>();

  constructor(dependencies: ResolverDependencies) {
    this.registry = dependencies.registry;
    this.spendBook = dependencies.spendBook;
    this.rateLimiter = dependencies.rateLimiter;
    this.admissions = dependencies.admissions ?? new ComposedAdmissions(dependencies.spendBook, dependencies.rateLimiter);
    this.ledger = dependencies.ledger;
    this.events = dependencies.events;
    this.timezone = dependencies.timezone;
    this.now = dependencies.now ?? (() => new Date());
    this.catchUp = dependencies.catchUp ?? new SharedStateCatchUp();
    this.failMode = dependencies.failMode ?? 'closed';
    this.onMetered = dependencies.onMetered ?? (() => {});
    this.logger = dependencies.logger ?? null;
    this.inFlight = dependencies.inFlight ?? null;
    this.unknownCustomers = dependencies.unknownCustomers ?? 'create';
    this.budgetExceededStatus = dependencies.budgetExceededStatus ?? 402;
    this.moveCounter = dependencies.moveCounter;
  }

  /** The period a budget is in now; rolls `resetAt` forward in memory at the exact instant. */
  periodOf(budget: BudgetRecord | null, now = this.now()): Period {
    if (!budget) return currentPeriod(null, null, now, this.timezone);
    const period = currentPeriod(budget.duration, budget.resetAt, now, this.timezone);
    if (period.end && budget.resetAt?.getTime() !== period.end.getTime()) budget.resetAt = period.end;
    return period;
  }

  /** The period a per-model budget (`model_max_budget`) is in now: calendar-aligned, no reset instant of its own. */
  modelPeriodOf(modelBudget: ModelBudgetRecord, now = this.now()): Period {
    return currentPeriod(modelBudget.duration, null, now, this.timezone);
  }

  /**
   * The start of the period the customer's counter of `scope` is in now (which stored counter
   * to seed the book with); null for a scope this does not know.
   */
  counterStartOf(customer: CustomerRecord, scope: string): number | null {
    const budget = this.registry.effectiveBudget(customer);
    if (scope === OVERALL_SCOPE) return this.periodOf(budget).start.getTime();
    if (scope.startsWith(MODEL_SCOPE_PREFIX)) {
      const modelBudget = budget?.modelMaxBudget?.[scope.slice(MODEL_SCOPE_PREFIX.length)];
      return modelBudget ? this.modelPeriodOf(modelBudget).start.getTime() : null;
    }
    if (scope === CREDITS_SCOPE || scope.startsWith(KEY_SCOPE_PREFIX)) return KEY_PERIOD_START_MS;
    return null;
  }

  /** Settled spend of a customer in its current period (what /customer/info shows). */
  currentSpend(customer: CustomerRecord): Promise<Pico> {
    const customerId = customer.userId;
    const period = this.periodOf(this.registry.effectiveBudget(customer));
    return this.spendBook.spendOf({ customerId, scope: OVERALL_SCOPE, periodStartMs: period.start.getTime() }, { periodEndMs: period.end?.getTime() ?? null }).catch((error: Error) => {
      throw new GatewayError('service_unavailable', `Spend counters are unreachable: ${error.message}`, null, { 'retry-after': '1' });
    });
  }

  /**
   * When the store cannot be read for a customer not cached here: `closed` refuses (it might
   * be blocked or on a tier), `open` serves it as a new customer without a budget of its own,
   * not cached, and queues its row for the ledger's next batch.
   */
  private unreadableCustomer(customerId: string, now: Date, error: Error): CustomerRecord | GatewayError {
    if (this.failMode === 'closed') {
      return new GatewayError('service_unavailable', `The store is unreachable, so Customer=${customerId} cannot be looked up now (${error.message}).`, null, { 'retry-after': '1' });
    }
    this.ledger.noteCustomer(customerId, now);
    return { userId: customerId, alias: null, blocked: false, budgetId: null, allowedModelRegion: null, defaultModel: null, prepaid: false, createdAt: now, updatedAt: now };
  }

  async authorize(request: AuthorizeRequest): Promise<Authorization> {
    const authorization = await this.decide(request);
    if (authorization.ok) this.journalInFlight(authorization.decision);
    return authorization;
  }

  /** Until it settles, the request is in the in-flight journal's snapshots (pulled by its timer). */
  private journalInFlight(decision: Decision): void {
    if (!this.inFlight) return;
    const counter = new DeliveredTokenCounter();
    const { request } = decision;
    this.inFlight.track(request.requestId, () =>
      snapshotOf(
        {
          requestId: request.requestId,
          customerId: request.customerId,
          apiKeyId: request.principal.keyId ?? MASTER_KEY_ID,
          keyAlias: request.principal.alias,
          model: request.model,
          // Read at each snapshot: failover may have moved the request to another deployment.
          deploymentId: request.deployment.id,
          provider: request.deployment.provider,
          endpoint: request.endpoint,
          periodStartMs: decision.period.start.getTime(),
          reservations: decision.reservations.map((r) => ({ scope: r.key.scope, periodStartMs: r.key.periodStartMs, amountPico: r.amount.toString() })),
          rateTicket: decision.rateTicket ? { ...decision.rateTicket } : null,
          ...(decision.customerOnRecord ? { customerOnRecord: true as const } : {}),
        },
        decision.delivery
          ? { source: decision.delivery, counter, promptTokens: request.promptTokens, price: request.deployment.price, chargeOf: (usage, cost) => chargeOf(decision.budget, request.model, usage, cost) }
          : null,
        this.now().getTime(),
      ),
    );
  }

  /** `attempt`: how many times this request was admitted again after the shared state's counters were seeded or moved. */
  private async decide(request: AuthorizeRequest, attempt = 0): Promise<Authorization> {
    // A change another process announced while the body was read applies to this request.
    await this.registry.refreshed();
    const { customerId } = request;
    const now = this.now();
    if (customerId === null) {
      return { ok: true, decision: { request, budget: null, period: this.periodOf(null, now), reservations: [], rateTicket: null, keyRateTicket: null, headers: {}, settled: false } };
    }
    // Cached (the hot path): no await. Else one indexed read of the store, which also creates
    // a customer seen for the first time (insert … on conflict do nothing): no other process
    // is waited for, and every process, the control plane too, finds the row at once.
    let customer = this.registry.customers.get(customerId);
    let onRecord = true;
    // Read from the store now, so its stored counters were seeded just before: a counter the
    // shared state still lacks is new, and starts from zero.
    const seeded = attempt > 0 || !customer;
    if (!customer) {
      try {
        // A bound key's customer is never created here: the customer was deleted (and the key
        // revoked) after this process last heard of the key, and creating it again would bring
        // it back as a new customer on the default budget, its history gone.
        const boundKey = request.principal.kind === 'virtual' && request.principal.customerId === customerId;
        if (this.unknownCustomers === 'refuse' || boundKey) {
          const known = await this.registry.customers.find(customerId);
          if (!known) return { ok: false, error: boundKey ? deletedCustomerKey(customerId) : unknownCustomer(customerId) };
          customer = known;
        } else {
          customer = await this.registry.customers.findOrCreate(customerId, now);
        }
      } catch (error) {
        // Read, but its counters not seeded: admission below meets the same unreachable
        // counters and applies the fail mode, knowing whether the customer is blocked.
        const fallback = error instanceof CustomerCountersUnavailable ? error.record : this.unreadableCustomer(customerId, now, error as Error);
        if (fallback instanceof GatewayError) return { ok: false, error: fallback };
        onRecord = error instanceof CustomerCountersUnavailable;
        customer = fallback;
      }
    }
    const authorization = await this.admitCustomer(request, customerId, customer, now, seeded);
    if (authorization === UNSEEDED) {
      // Redis lacks a counter of this cached customer: it lost its data (a restart without
      // persistence), or the counter is new (a scope never charged). Read the customer again,
      // which seeds its counters from the store, and admit once more, creating what is missing.
      // This process's charges still queued for the ledger were in what Redis lost and are not
      // in the store yet: written first, they are in the seed (another process's queue, up to
      // one batch, is not). Should the store be down, the read below meets it too.
      this.registry.customers.delete(customerId);
      if (this.ledger.hasUnflushed(customerId)) await this.ledger.flush().catch(() => undefined);
      return this.decide(request, attempt + 1);
    }
    if (authorization instanceof OutOfPeriod) {
      // A counter is in a period its budget no longer has: a change moved the budget's period
      // start, and moved the counters of the customers with spend since the new start, not this
      // one's. Admitted as it is, the request would be charged to the new period in the ledger
      // but not in the live counter (start moved earlier), or the requests in flight would stay
      // in the old period when the counter starts over (start moved later).
      if (attempt >= MAX_ADMISSION_ATTEMPTS) return { ok: false, error: countersNotMoved(customerId, 'they are still in a period their budget no longer has') };
      try {
        await this.moveCounterOnce(customerId, authorization.scope);
      } catch (error) {
        return { ok: false, error: countersNotMoved(customerId, (error as Error).message) };
      }
      return this.decide(request, attempt + 1);
    }
    if (authorization.ok && onRecord) authorization.decision.customerOnRecord = true;
    return authorization;
  }

  private moveCounterOnce(customerId: string, scope: string): Promise<void> {
    const id = `${customerId}\u0000${scope}`;
    let moving = this.movingCounters.get(id);
    if (!moving) {
      moving = this.moveCounter(customerId, scope).finally(() => this.movingCounters.delete(id));
      this.movingCounters.set(id, moving);
    }
    return moving;
  }

  private async admitCustomer(request: AuthorizeRequest, customerId: string, customer: CustomerRecord, now: Date, seeded: boolean): Promise<Authorization | typeof UNSEEDED | OutOfPeriod> {
    if (customer.blocked) {
      return { ok: false, error: new GatewayError('customer_blocked', `Customer=${customerId} is blocked from making LLM API calls.`, 'user') };
    }
    try {
      return await this.admit(request, customerId, customer, now, seeded);
    } catch (error) {
      // The shared counters (Redis) did not answer, or answered late: an admission step that
      // timed out may have been applied all the same. So the request's possible reservations
      // and rate ticket are settled by its id (a no-op for what Redis never took), never guessed.
      const unchecked = this.admitUnchecked(request, customerId, customer, now);
      if (isSharedStateRefusal(error)) {
        // Redis answered with a script error: not an outage, so no fail mode; this request fails.
        this.logger?.error({ err: error.message, requestId: request.requestId, customerId }, 'shared counters refused an admission');
        void this.release(unchecked);
        return { ok: false, error: new GatewayError('internal_error', `The spend counters refused to admit the request of Customer=${customerId}; it was not served (${error.message}).`) };
      }
      if (this.failMode === 'open') return { ok: true, decision: unchecked };
      // Not awaited: the catch-up retries it, and the client should not wait on a silent Redis.
      void this.release(unchecked);
      return {
        ok: false,
        error: new GatewayError('service_unavailable', `Spend counters are unreachable, so the request of Customer=${customerId} cannot be admitted now (${(error as Error).message}).`, null, { 'retry-after': '1' }),
      };
    }
  }

  /**
   * Fail open: serve without checking the budget or the rate limits. The decision still names
   * every counter the cost goes to and the rate ticket the request may hold, so settle() meters
   * it in the ledger, gives back whatever a timed-out admission did reserve, and the shared
   * counters catch up with it once they answer again. Also what a refused admission releases.
   */
  private admitUnchecked(request: AuthorizeRequest, customerId: string, customer: CustomerRecord, now: Date): Decision {
    const budget = this.registry.effectiveBudget(customer);
    const period = this.periodOf(budget, now);
    const { overall, model, key, credits } = this.countersOf(request, customerId, customer, budget, period, now);
    const reservations: CounterReservation[] = [overall, ...(model ? [model.key] : []), ...(key ? [key.key] : []), ...(credits ? [credits] : [])].map((counter) => ({ key: counter, amount: 0n }));
    const rateTicket: RateTicket | null = hasRateLimits(budget)
      ? { key: rateKeyOf(customerId), id: request.requestId, tokens: 0, at: now.getTime(), holdsParallelSlot: true }
      : null;
    return { request, budget, period, reservations, rateTicket, keyRateTicket: null, headers: { 'x-tollgate-degraded': 'shared-counters-unreachable' }, settled: false };
  }

  /**
   * The counters a request is charged to: the customer's period, its model's budget if one caps
   * that model, and a bound key's lifetime spend if the key has a max budget. All are the
   * customer's (one hash slot with Redis Cluster).
   */
  private countersOf(
    request: AuthorizeRequest,
    customerId: string,
    customer: CustomerRecord,
    budget: BudgetRecord | null,
    period: Period,
    now: Date,
  ): { overall: CounterKey; model: { key: CounterKey; maxBudget: Pico; periodEndMs: number | null } | null; key: { key: CounterKey; maxBudget: Pico } | null; credits: CounterKey | null } {
    const overall: CounterKey = { customerId, scope: OVERALL_SCOPE, periodStartMs: period.start.getTime() };
    const { keyId, keyLimits } = request.principal;
    const key = keyId && keyLimits?.maxBudget != null ? { key: { customerId, scope: keyScope(keyId), periodStartMs: KEY_PERIOD_START_MS }, maxBudget: keyLimits.maxBudget } : null;
    // A prepaid customer's consumed credits: one more counter, never reset.
    const credits: CounterKey | null = customer.prepaid || budget?.prepaid ? { customerId, scope: CREDITS_SCOPE, periodStartMs: KEY_PERIOD_START_MS } : null;
    const modelBudget = budget?.modelMaxBudget?.[request.model];
    if (!modelBudget) return { overall, model: null, key, credits };
    const modelPeriod = this.modelPeriodOf(modelBudget, now);
    return {
      overall,
      model: { key: { customerId, scope: modelScope(request.model), periodStartMs: modelPeriod.start.getTime() }, maxBudget: modelBudget.maxBudget, periodEndMs: modelPeriod.end?.getTime() ?? null },
      key,
      credits,
    };
  }

  /** Checks and reserves every limit in one step of the shared state (one Redis round trip). */
  private async admit(request: AuthorizeRequest, customerId: string, customer: CustomerRecord, now: Date, seeded: boolean): Promise<Authorization | typeof UNSEEDED | OutOfPeriod> {
    const budget = this.registry.effectiveBudget(customer);
    const period = this.periodOf(budget, now);
    // Budgets count the customer's charge, so the reservation is the charge of the worst case.
    const worstCase = { promptTokens: request.promptTokens, completionTokens: request.maxCompletionTokens };
    const estimate = chargeOf(budget, request.model, worstCase, costOf(request.deployment.price, worstCase));
    const counters = this.countersOf(request, customerId, customer, budget, period, now);
    const claims: CounterClaim[] = [{ key: counters.overall, amount: estimate, limit: budget?.maxBudget ?? null, periodEndMs: period.end?.getTime() ?? null }];
    if (counters.model) claims.push({ key: counters.model.key, amount: estimate, limit: counters.model.maxBudget, periodEndMs: counters.model.periodEndMs });
    const keyClaim = counters.key ? claims.push({ key: counters.key.key, amount: estimate, limit: counters.key.maxBudget }) - 1 : -1;
    // Prepaid: admitted while the credits counter is under what the grants make usable, in
    // the same admission as the budget (both must pass: the tighter wins).
    let credits: { limit: Pico; index: number } | null = null;
    if (counters.credits) {
      let state;
      try {
        state = await this.registry.credits.get(customerId, now);
      } catch (error) {
        return { ok: false, error: new GatewayError('service_unavailable', `The store is unreachable, so the credits of Customer=${customerId} cannot be read now (${(error as Error).message}).`, null, { 'retry-after': '1' }) };
      }
      const limit = creditLimit(state, now.getTime());
      credits = { limit, index: claims.push({ key: counters.credits, amount: estimate, limit }) - 1 };
    }
    // A bound key's own rpm: its own window (the key is not the customer's to share), taken
    // first and given back if the customer's admission refuses.
    let keyRateTicket: RateTicket | null = null;
    const keyRpm = request.principal.keyLimits?.rpmLimit;
    if (keyRpm != null && request.principal.keyId) {
      const rate = await this.rateLimiter.acquire(`key:${request.principal.keyId}`, { rpm: keyRpm, tpm: null, parallel: null }, 0, now.getTime(), request.requestId);
      if (!rate.ok) return { ok: false, error: rateLimited(`key: ${request.principal.alias ?? request.principal.keyId} (bound to customer ${customerId})`, rate) };
      keyRateTicket = rate.ticket;
    }
    const giveBackKeyTicket = () => keyRateTicket && this.catchUp.run(() => this.rateLimiter.settle(keyRateTicket!, 0), 'rate settle');
    // tpm reserves the prompt plus the output the client capped; trued up to usage at settle.
    // Without a cap the output cannot be known, so it is not reserved (like budgets, the
    // window can then overshoot by at most one request).
    const customerRateLimited = budget !== null && hasRateLimits(budget);
    const outcome = await this.admissions.admit({
      customerId,
      settlementId: request.requestId,
      counters: claims,
      createMissing: seeded,
      rate: customerRateLimited
        ? {
            key: rateKeyOf(customerId),
            limits: { rpm: budget.rpmLimit, tpm: budget.tpmLimit, parallel: budget.maxParallelRequests },
            estimatedTokens: request.promptTokens + (request.requestedMaxTokens ?? 0),
            nowMs: now.getTime(),
          }
        : null,
    });
    if (!outcome.admitted) await giveBackKeyTicket();
    if (!outcome.admitted && outcome.refusedBy === 'unseeded') return UNSEEDED;
    if (!outcome.admitted && outcome.refusedBy === 'outOfPeriod') return new OutOfPeriod(claims[outcome.counter]!.key.scope);
    if (!outcome.admitted && outcome.refusedBy === 'budget') {
      const refused = outcome.counters[outcome.counter]!;
      if (outcome.counter === keyClaim) return { ok: false, error: keyBudgetExceeded(request.principal, customerId, refused.spend, counters.key!.maxBudget, this.budgetExceededStatus) };
      if (credits && outcome.counter === credits.index) return { ok: false, error: creditsExhausted(customerId, credits.limit, refused.spend, refused.reserved, this.budgetExceededStatus) };
      const model = outcome.counter > 0 && counters.model ? { model: request.model, max: counters.model.maxBudget } : null;
      return { ok: false, error: budgetExceeded(customerId, budget!, refused.spend, refused.reserved, model, this.budgetExceededStatus) };
    }
    if (!outcome.admitted) return { ok: false, error: rateLimited(`end_user: ${customerId}`, outcome.rate) };
    const reservations: CounterReservation[] = claims.map((claim) => ({ key: claim.key, amount: claim.amount }));
    const overall = outcome.counters[0]!;
    let rateTicket: RateTicket | null = null;
    const headers: Record<string, string> = {};
    if (budget && outcome.rate) {
      const rate = outcome.rate;
      rateTicket = rate.ticket;
      if (budget.rpmLimit !== null) {
        headers['x-ratelimit-end_user-limit-requests'] = String(budget.rpmLimit);
        headers['x-ratelimit-end_user-remaining-requests'] = String(rate.remainingRequests);
      }
      if (budget.tpmLimit !== null) {
        headers['x-ratelimit-end_user-limit-tokens'] = String(budget.tpmLimit);
        headers['x-ratelimit-end_user-remaining-tokens'] = String(rate.remainingTokens);
      }
    }
    if (budget?.maxBudget !== null && budget?.maxBudget !== undefined) {
      // What is left once this request's reservation is counted; a JSON answer replaces it with
      // what is left after its actual cost (Settlement.budgetRemainingPico).
      const remaining = budget.maxBudget - overall.spend - estimate;
      headers['x-tollgate-budget-remaining'] = picoToDecimalString(remaining > 0n ? remaining : 0n);
    }
    if (credits) {
      // Like the budget's: the balance once this reservation is counted (the settlement replaces it).
      const remaining = credits.limit - outcome.counters[credits.index]!.spend - estimate;
      headers[CREDITS_REMAINING_HEADER] = picoToDecimalString(remaining > 0n ? remaining : 0n);
    }
    return { ok: true, decision: { request, budget, period, reservations, rateTicket, keyRateTicket, headers, settled: false, credits } };
  }

  /**
   * Meters a finished (or interrupted) request: replaces reservations with the actual cost,
   * trues up tokens, journals and queues the ledger row, and publishes the spend event.
   * Callers await it before writing the response's last byte. The ledger row is recorded
   * (and journaled, at the turn's end, ahead of the turn's Redis writes) before the shared
   * counters are touched, so neither a failing counter store nor a kill can lose a charge.
   */
  async settle(decision: Decision, usage: TokenUsage, source: CostSource, status: 'success' | 'partial' = 'success'): Promise<Settlement> {
    if (decision.settled) throw new Error(`request ${decision.request.requestId} settled twice`);
    decision.settled = true;
    const { request } = decision;
    const cost = costOf(request.deployment.price, usage);
    const charge = chargeOf(decision.budget, request.model, usage, cost);
    const counters: CounterIncrement[] = decision.reservations.map((reservation) => ({ scope: reservation.key.scope, periodStartMs: reservation.key.periodStartMs }));
    const record: SpendRecord = {
      requestId: request.requestId,
      customerId: request.customerId,
      apiKeyId: request.principal.keyId ?? MASTER_KEY_ID,
      keyAlias: request.principal.alias,
      model: request.model,
      deploymentId: request.deployment.id,
      provider: request.deployment.provider,
      endpoint: request.endpoint,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      cachedPromptTokens: usage.cachedPromptTokens ?? 0,
      cacheWriteTokens: usage.cacheWriteTokens ?? 0,
      costPico: cost,
      chargePico: charge,
      costSource: source,
      status,
      periodStartMs: decision.period.start.getTime(),
      counters,
      createdAtMs: this.now().getTime(),
      ...(decision.customerOnRecord ? { customerOnRecord: true as const } : {}),
    };
    // Written with the turn's other records, before any Redis command of this turn
    // (shared/end-of-turn.ts); awaited below, before the caller answers.
    const journaled = this.ledger.record(record);
    journaled.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    // A restart replays this record, not the in-flight snapshot.
    this.inFlight?.untrack(request.requestId);
    this.onMetered(record);
    let periodSpend: Pico | null = null;
    let creditsSpend: Pico | null = null;
    if (request.customerId !== null) {
      // Budgets and their counters speak of what the customer is charged.
      const settlement = this.settlementOf(decision, request.customerId, charge, usage.promptTokens + usage.completionTokens);
      await this.catchUp.run(async () => {
        const settled = await this.admissions.settle(settlement);
        const overall = decision.reservations.findIndex((reservation) => reservation.key.scope === OVERALL_SCOPE);
        if (overall >= 0) periodSpend = settled[overall]!.spend;
        if (decision.credits) creditsSpend = settled[decision.credits.index]!.spend;
        // A budget change that moved a counter to another period while this request ran made
        // the book count the charge there: the stored counters follow it (the queued record
        // changes; one a batch stored before this reply is moved by the next batch).
        if (settled.some((counter, i) => counter.periodStartMs !== counters[i]!.periodStartMs)) {
          this.ledger.repointCounters(record, counters.map((counter, i) => ({ scope: counter.scope, periodStartMs: settled[i]!.periodStartMs })));
        }
      }, 'commit');
    }
    const keyTicket = decision.keyRateTicket;
    if (keyTicket) await this.catchUp.run(() => this.rateLimiter.settle(keyTicket, usage.promptTokens + usage.completionTokens), 'rate settle');
    this.events.publish({
      record,
      periodSpendPico: periodSpend ?? 0n,
      maxBudgetPico: decision.budget?.maxBudget ?? null,
      softBudgetPico: decision.budget?.softBudget ?? null,
      budgetId: decision.budget?.budgetId ?? null,
    });
    const maxBudget = decision.budget?.maxBudget ?? null;
    const spentNow = periodSpend as Pico | null;
    const budgetRemainingPico = maxBudget === null || spentNow === null ? null : maxBudget > spentNow ? maxBudget - spentNow : 0n;
    const creditsSpent = creditsSpend as Pico | null;
    const creditsRemainingPico = decision.credits && creditsSpent !== null ? (decision.credits.limit > creditsSpent ? decision.credits.limit - creditsSpent : 0n) : null;
    await journaled;
    return { costPico: cost, chargePico: charge, periodSpendPico: periodSpend, budgetRemainingPico, creditsRemainingPico };
  }

  /** A request that ended without usage (upstream refused it): frees what it held, charges nothing. */
  async release(decision: Decision): Promise<void> {
    if (decision.settled) return;
    decision.settled = true;
    this.inFlight?.untrack(decision.request.requestId);
    const keyTicket = decision.keyRateTicket;
    if (keyTicket) await this.catchUp.run(() => this.rateLimiter.settle(keyTicket, 0), 'rate settle');
    const { customerId } = decision.request;
    if (customerId === null) return;
    const settlement = this.settlementOf(decision, customerId, null, 0);
    await this.catchUp.run(() => this.admissions.settle(settlement), 'release');
  }

  /** The request's end in the shared state: `cost` charged to each counter (null: released). */
  private settlementOf(decision: Decision, customerId: string, cost: Pico | null, tokens: number): SettlementRequest {
    return {
      customerId,
      settlementId: decision.request.requestId,
      counters: decision.reservations.map((reservation) => ({ key: reservation.key, reservation: reservation.amount, actual: cost })),
      rate: decision.rateTicket ? { ticket: decision.rateTicket, actualTokens: tokens } : null,
    };
  }
}

/** An admission that found a counter missing for a cached customer (see `decide`). */
const UNSEEDED = Symbol('unseeded');
/** An admission that found a counter (of this scope) in a period its budget no longer has (see `decide`). */
class OutOfPeriod {
  constructor(readonly scope: string) {}
}
/** Admissions again after seeding or moving counters, before the request is refused. */
const MAX_ADMISSION_ATTEMPTS = 2;

function countersNotMoved(customerId: string, reason: string): GatewayError {
  return new GatewayError(
    'service_unavailable',
    `The spend counters of Customer=${customerId} could not be moved into their budget's current period, so the request cannot be admitted now (${reason}).`,
    null,
    { 'retry-after': '1' },
  );
}

function hasRateLimits(budget: BudgetRecord | null): boolean {
  return budget !== null && (budget.rpmLimit !== null || budget.tpmLimit !== null || budget.maxParallelRequests !== null);
}

/** The rate limiter's key of a customer's window. */
function rateKeyOf(customerId: string): string {
  return `end_user:${customerId}`;
}

function rateLimited(who: string, rate: Extract<RateDecision, { ok: false }>): GatewayError {
  const retryAfterSeconds = Math.max(1, Math.ceil(rate.retryAfterMs / 1000));
  return new GatewayError(
    'rate_limit_exceeded',
    `Rate limit exceeded for ${who}. Limit type: ${rate.limitType}. Current limit: ${rate.limit}, current usage: ${rate.current}.`,
    null,
    { 'retry-after': String(retryAfterSeconds), 'x-ratelimit-limit-type': rate.limitType },
  );
}

/** Same refusal mechanism as a customer budget: never retried by the SDKs. */
function keyBudgetExceeded(principal: Principal, customerId: string, spend: Pico, limit: Pico, status: 402 | 429): GatewayError {
  return new GatewayError(
    'budget_exceeded',
    `Budget has been exceeded! Key ${principal.alias ?? principal.keyId} (bound to customer ${customerId}) is over its own budget. Spend: ${dollars(spend)}, Max budget: ${dollars(limit)}.`,
    null,
    { 'x-should-retry': 'false' },
    status,
  );
}

/** A prepaid customer whose balance does not cover the request: the same refusal mechanism as a budget's. */
function creditsExhausted(customerId: string, limit: Pico, consumed: Pico, reserved: Pico, status: 402 | 429): GatewayError {
  const balance = limit - consumed;
  const inFlight = reserved > 0n ? ` (+${dollars(reserved)} reserved by requests in flight)` : '';
  return new GatewayError(
    'credits_exhausted',
    `credits exhausted: balance ${dollars(balance > 0n ? balance : 0n)} remaining of ${dollars(limit)} granted${inFlight}. Customer=${customerId} is prepaid; grant more credits (POST /customer/credits/grant).`,
    null,
    { 'x-should-retry': 'false', [CREDITS_REMAINING_HEADER]: picoToDecimalString(balance > 0n ? balance : 0n), 'x-tollgate-credits-granted': picoToDecimalString(limit) },
    status,
  );
}

function deletedCustomerKey(customerId: string): GatewayError {
  return new GatewayError('unauthorized', `Authentication failed: this key was bound to customer "${customerId}", which has been deleted; its keys are revoked.`, null);
}

function unknownCustomer(customerId: string): GatewayError {
  return new GatewayError(
    'customer_not_found',
    `Customer=${customerId} does not exist and this gateway does not create customers on first use (tollgate.unknown_customers: refuse). Create it first: POST /customer/new {"user_id": ${JSON.stringify(customerId)}}.`,
    'user',
  );
}

function budgetExceeded(customerId: string, budget: BudgetRecord, spend: Pico, reserved: Pico, model: { model: string; max: Pico } | null, status: 402 | 429): GatewayError {
  const limit = model ? model.max : budget.maxBudget!;
  const inFlight = reserved > 0n ? ` (+${dollars(reserved)} reserved by requests in flight)` : '';
  const scope = model ? ` for model=${model.model}` : '';
  return new GatewayError(
    'budget_exceeded',
    `Budget has been exceeded! Customer=${customerId} is over budget${scope}. Spend: ${dollars(spend)}${inFlight}, Max budget: ${dollars(limit)} (budget_id=${budget.budgetId}).`,
    null,
    { 'x-should-retry': 'false' },
    status,
  );
}
