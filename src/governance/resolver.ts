/**
 * @module The internal resolver: `authorize(request) → decision` and `settle(decision, usage)`.
 * The data plane calls it for every request; it decides from memory only (registry, spend
 * book, rate limiter) and meters through the ledger. Expected refusals are returned as
 * values, not thrown.
 */
import type { Deployment, FailMode } from '../config/load';
import { costOf, type TokenUsage } from '../pricing/prices';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString, type Pico } from '../shared/money';
import type { Ledger } from '../ledger/ledger';
import type { SpendEventBus } from '../ledger/events';
import type { CostSource, CounterIncrement, SpendRecord } from '../ledger/types';
import { SharedStateCatchUp } from '../shared-state/catch-up';
import type { CounterKey, RateLimiter, RateTicket, SpendBook } from '../shared-state/types';
import { currentPeriod, type Period } from './periods';
import type { BudgetRecord, CustomerRecord, Principal } from './records';
import { MASTER_KEY_ID, type Registry } from './registry';

export interface AuthorizeRequest {
  requestId: string;
  principal: Principal;
  customerId: string | null;
  model: string;
  deployment: Deployment;
  endpoint: 'chat' | 'embeddings';
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
  /** x-ratelimit-end_user-* and x-tollgate-budget-remaining, for the response. */
  headers: Record<string, string>;
  settled: boolean;
}

export type Authorization = { ok: true; decision: Decision } | { ok: false; error: GatewayError };

export interface Settlement {
  costPico: Pico;
  periodSpendPico: Pico | null;
}

export const OVERALL_SCOPE = '';
export const modelScope = (model: string) => `model:${model}`;

function dollars(pico: Pico): string {
  return `$${picoToDecimalString(pico)}`;
}

export interface ResolverDependencies {
  registry: Registry;
  spendBook: SpendBook;
  rateLimiter: RateLimiter;
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
}

export class InternalResolver {
  private readonly registry: Registry;
  private readonly spendBook: SpendBook;
  private readonly rateLimiter: RateLimiter;
  private readonly ledger: Ledger;
  private readonly events: SpendEventBus;
  private readonly timezone: string;
  private readonly now: () => Date;
  private readonly catchUp: SharedStateCatchUp;
  private readonly failMode: FailMode;
  private readonly onMetered: (record: SpendRecord) => void;

  constructor(dependencies: ResolverDependencies) {
    this.registry = dependencies.registry;
    this.spendBook = dependencies.spendBook;
    this.rateLimiter = dependencies.rateLimiter;
    this.ledger = dependencies.ledger;
    this.events = dependencies.events;
    this.timezone = dependencies.timezone;
    this.now = dependencies.now ?? (() => new Date());
    this.catchUp = dependencies.catchUp ?? new SharedStateCatchUp();
    this.failMode = dependencies.failMode ?? 'closed';
    this.onMetered = dependencies.onMetered ?? (() => {});
  }

  /** The period a budget is in now; rolls `resetAt` forward in memory at the exact instant. */
  periodOf(budget: BudgetRecord | null, now = this.now()): Period {
    if (!budget) return currentPeriod(null, null, now, this.timezone);
    const period = currentPeriod(budget.duration, budget.resetAt, now, this.timezone);
    if (period.end && budget.resetAt?.getTime() !== period.end.getTime()) budget.resetAt = period.end;
    return period;
  }

  /** Settled spend of a customer in its current period (what /customer/info shows). */
  currentSpend(customerId: string): Promise<Pico> {
    const customer = this.registry.customers.get(customerId);
    const period = this.periodOf(this.registry.effectiveBudget(customer));
    return this.spendBook.spendOf({ customerId, scope: OVERALL_SCOPE, periodStartMs: period.start.getTime() }).catch((error: Error) => {
      throw new GatewayError('service_unavailable', `Spend counters are unreachable: ${error.message}`, null, { 'retry-after': '1' });
    });
  }

  /** The customer record, created in memory (and queued for the store) on first sight. */
  private customerFor(customerId: string): CustomerRecord {
    let customer = this.registry.customers.get(customerId);
    if (!customer) {
      const now = this.now();
      customer = { userId: customerId, alias: null, blocked: false, budgetId: null, allowedModelRegion: null, defaultModel: null, createdAt: now, updatedAt: now };
      this.registry.customers.set(customerId, customer);
      this.ledger.noteCustomer(customerId, now);
    }
    return customer;
  }

  async authorize(request: AuthorizeRequest): Promise<Authorization> {
    // A change another process announced while the body was read applies to this request.
    await this.registry.refreshed();
    const { customerId } = request;
    const now = this.now();
    if (customerId === null) {
      return { ok: true, decision: { request, budget: null, period: this.periodOf(null, now), reservations: [], rateTicket: null, headers: {}, settled: false } };
    }
    const customer = this.customerFor(customerId);
    if (customer.blocked) {
      return { ok: false, error: new GatewayError('customer_blocked', `Customer=${customerId} is blocked from making LLM API calls.`, 'user') };
    }
    const reservations: CounterReservation[] = [];
    try {
      return await this.admit(request, customerId, customer, now, reservations);
    } catch (error) {
      // The shared counters (Redis) did not answer.
      for (const r of reservations) await this.catchUp.run(() => this.spendBook.release(r.key, r.amount, request.requestId), 'release');
      if (this.failMode === 'open') return { ok: true, decision: this.admitUnchecked(request, customerId, customer, now) };
      return {
        ok: false,
        error: new GatewayError('service_unavailable', `Spend counters are unreachable, so the request of Customer=${customerId} cannot be admitted now (${(error as Error).message}).`, null, { 'retry-after': '1' }),
      };
    }
  }

  /**
   * Fail open: serve without checking the budget or the rate limits. The decision still names
   * the counters the cost goes to (nothing reserved), so settle() meters it in the ledger and
   * the shared counters catch up with it once they answer again.
   */
  private admitUnchecked(request: AuthorizeRequest, customerId: string, customer: CustomerRecord, now: Date): Decision {
    const budget = this.registry.effectiveBudget(customer);
    const period = this.periodOf(budget, now);
    const { overall, model } = this.countersOf(request, customerId, budget, period, now);
    const reservations: CounterReservation[] = [overall, ...(model ? [model.key] : [])].map((key) => ({ key, amount: 0n }));
    return { request, budget, period, reservations, rateTicket: null, headers: { 'x-tollgate-degraded': 'shared-counters-unreachable' }, settled: false };
  }

  /** The counters a request is charged to: the customer's period, and its model's budget if one caps that model. */
  private countersOf(request: AuthorizeRequest, customerId: string, budget: BudgetRecord | null, period: Period, now: Date): { overall: CounterKey; model: { key: CounterKey; maxBudget: Pico } | null } {
    const overall: CounterKey = { customerId, scope: OVERALL_SCOPE, periodStartMs: period.start.getTime() };
    const modelBudget = budget?.modelMaxBudget?.[request.model];
    if (!modelBudget) return { overall, model: null };
    const modelPeriod = currentPeriod(modelBudget.duration, null, now, this.timezone);
    return { overall, model: { key: { customerId, scope: modelScope(request.model), periodStartMs: modelPeriod.start.getTime() }, maxBudget: modelBudget.maxBudget } };
  }

  /** Checks and reserves every limit; pushes each reservation it takes onto `reservations`. */
  private async admit(request: AuthorizeRequest, customerId: string, customer: CustomerRecord, now: Date, reservations: CounterReservation[]): Promise<Authorization> {
    const budget = this.registry.effectiveBudget(customer);
    const period = this.periodOf(budget, now);
    const price = request.deployment.price;
    const estimate = costOf(price, { promptTokens: request.promptTokens, completionTokens: request.maxCompletionTokens });
    const release = async () => {
      for (const r of reservations.splice(0)) await this.catchUp.run(() => this.spendBook.release(r.key, r.amount, request.requestId), 'release');
    };

    const counters = this.countersOf(request, customerId, budget, period, now);
    const overall = await this.spendBook.reserve(counters.overall, estimate, budget?.maxBudget ?? null, request.requestId);
    if (!overall.admitted) {
      return { ok: false, error: budgetExceeded(customerId, budget!, overall.spend, overall.reserved, null) };
    }
    reservations.push({ key: counters.overall, amount: estimate });

    if (counters.model) {
      const { key, maxBudget } = counters.model;
      const result = await this.spendBook.reserve(key, estimate, maxBudget, request.requestId);
      if (!result.admitted) {
        await release();
        return { ok: false, error: budgetExceeded(customerId, budget!, result.spend, result.reserved, { model: request.model, max: maxBudget }) };
      }
      reservations.push({ key, amount: estimate });
    }

    let rateTicket: RateTicket | null = null;
    const headers: Record<string, string> = {};
    if (budget && (budget.rpmLimit !== null || budget.tpmLimit !== null || budget.maxParallelRequests !== null)) {
      // tpm reserves the prompt plus the output the client capped; trued up to usage at settle.
      // Without a cap the output cannot be known, so it is not reserved (like budgets, the
      // window can then overshoot by at most one request).
      const estimatedTokens = request.promptTokens + (request.requestedMaxTokens ?? 0);
      const rate = await this.rateLimiter.acquire(
        `end_user:${customerId}`,
        { rpm: budget.rpmLimit, tpm: budget.tpmLimit, parallel: budget.maxParallelRequests },
        estimatedTokens,
        now.getTime(),
      );
      if (!rate.ok) {
        await release();
        const retryAfterSeconds = Math.max(1, Math.ceil(rate.retryAfterMs / 1000));
        return {
          ok: false,
          error: new GatewayError(
            'rate_limit_exceeded',
            `Rate limit exceeded for end_user: ${customerId}. Limit type: ${rate.limitType}. Current limit: ${rate.limit}, current usage: ${rate.current}.`,
            null,
            { 'retry-after': String(retryAfterSeconds), 'x-ratelimit-limit-type': rate.limitType },
          ),
        };
      }
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
      const remaining = budget.maxBudget - overall.spend;
      headers['x-tollgate-budget-remaining'] = picoToDecimalString(remaining > 0n ? remaining : 0n);
    }
    return { ok: true, decision: { request, budget, period, reservations, rateTicket, headers, settled: false } };
  }

  /**
   * Meters a finished (or interrupted) request: replaces reservations with the actual cost,
   * trues up tokens, journals and queues the ledger row, and publishes the spend event.
   * Callers await it before writing the response's last byte. The ledger row is recorded
   * before the shared counters are touched, so a failing counter store cannot lose a charge.
   */
  async settle(decision: Decision, usage: TokenUsage, source: CostSource, status: 'success' | 'partial' = 'success'): Promise<Settlement> {
    if (decision.settled) throw new Error(`request ${decision.request.requestId} settled twice`);
    decision.settled = true;
    const { request } = decision;
    const cost = costOf(request.deployment.price, usage);
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
      costSource: source,
      status,
      periodStartMs: decision.period.start.getTime(),
      counters,
      createdAtMs: this.now().getTime(),
    };
    this.ledger.record(record);
    this.onMetered(record);
    let periodSpend: Pico | null = null;
    for (const reservation of decision.reservations) {
      await this.catchUp.run(async () => {
        const spend = await this.spendBook.commit(reservation.key, reservation.amount, cost, request.requestId);
        if (reservation.key.scope === OVERALL_SCOPE) periodSpend = spend;
      }, 'commit');
    }
    const ticket = decision.rateTicket;
    if (ticket) await this.catchUp.run(() => this.rateLimiter.settle(ticket, usage.promptTokens + usage.completionTokens), 'rate settle');
    this.events.publish({
      record,
      periodSpendPico: periodSpend ?? 0n,
      maxBudgetPico: decision.budget?.maxBudget ?? null,
      softBudgetPico: decision.budget?.softBudget ?? null,
      budgetId: decision.budget?.budgetId ?? null,
    });
    return { costPico: cost, periodSpendPico: periodSpend };
  }

  /** A request that ended without usage (upstream refused it): frees what it held, charges nothing. */
  async release(decision: Decision): Promise<void> {
    if (decision.settled) return;
    decision.settled = true;
    for (const reservation of decision.reservations) await this.catchUp.run(() => this.spendBook.release(reservation.key, reservation.amount, decision.request.requestId), 'release');
    const ticket = decision.rateTicket;
    if (ticket) await this.catchUp.run(() => this.rateLimiter.settle(ticket, 0), 'rate settle');
  }
}

function budgetExceeded(customerId: string, budget: BudgetRecord, spend: Pico, reserved: Pico, model: { model: string; max: Pico } | null): GatewayError {
  const limit = model ? model.max : budget.maxBudget!;
  const inFlight = reserved > 0n ? ` (+${dollars(reserved)} reserved by requests in flight)` : '';
  const scope = model ? ` for model=${model.model}` : '';
  return new GatewayError(
    'budget_exceeded',
    `Budget has been exceeded! Customer=${customerId} is over budget${scope}. Spend: ${dollars(spend)}${inFlight}, Max budget: ${dollars(limit)} (budget_id=${budget.budgetId}).`,
    null,
    { 'x-should-retry': 'false' },
  );
}
