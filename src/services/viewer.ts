/**
 * @module What a key bound to a customer may read: its own customer's usage and limits, in
 * charges only (the provider cost and the reseller's margin never reach a customer's app).
 * REST `GET /customer/me` and GraphQL `viewer` render this.
 */
import type { Principal } from '../governance/records';
import { GatewayError } from '../shared/errors';
import type { Pico } from '../shared/money';
import type { ServiceContext } from './context';
import { CHARGE_SQL, type SpendService } from './spend';
import { parseDate } from './validation';
import type { CreditBalance, CreditService } from './credits';

function creditSummary(balance: CreditBalance) {
  return { grantedPico: balance.granted, consumedPico: balance.consumed, balancePico: balance.balance };
}

export interface ViewerUsageDay {
  day: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  chargePico: Pico;
}

export interface ViewerView {
  customerId: string;
  alias: string | null;
  /** Charges in the current budget period. */
  spendPico: Pico;
  maxBudgetPico: Pico | null;
  budgetRemainingPico: Pico | null;
  periodStart: Date;
  resetAt: Date | null;
  key: { alias: string | null; rpmLimit: number | null; maxBudgetPico: Pico | null; spendPico: Pico };
  /** Per day between `from` and `to` (default: the current period). */
  usage: ViewerUsageDay[];
  /** A prepaid customer's credits (null when it is not prepaid). */
  credits: { grantedPico: Pico; consumedPico: Pico; balancePico: Pico } | null;
}

export class ViewerService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly spend: SpendService,
    private readonly credits: CreditService,
  ) {}

  async me(principal: Principal, range: { from?: unknown; to?: unknown } = {}): Promise<ViewerView> {
    const customerId = principal.customerId;
    if (!customerId) throw new GatewayError('forbidden', 'Only a key bound to a customer (customer_id) has a viewer.', null);
    const customer = await this.ctx.registry.customers.find(customerId);
    if (!customer) throw new GatewayError('not_found', `Customer '${customerId}' of this key no longer exists.`, null);
    const budget = this.ctx.registry.effectiveBudget(customer);
    const period = this.ctx.resolver.periodOf(budget);
    const spendPico = await this.spend.currentSpend(customer);
    const maxBudgetPico = budget?.maxBudget ?? null;
    const from = parseDate('start_date', range.from) ?? period.start;
    const to = parseDate('end_date', range.to) ?? new Date(this.ctx.now().getTime() + 1000);
    const usage = (await this.spend.report(from, to, 'day', customerId)).map((row) => ({
      day: row.key,
      requests: row.requests,
      promptTokens: row.promptTokens,
      completionTokens: row.completionTokens,
      chargePico: row.chargePico,
    }));
    return {
      customerId,
      alias: customer.alias,
      spendPico,
      maxBudgetPico,
      budgetRemainingPico: maxBudgetPico === null ? null : maxBudgetPico > spendPico ? maxBudgetPico - spendPico : 0n,
      periodStart: period.start,
      resetAt: period.end,
      key: { alias: principal.alias, rpmLimit: principal.keyLimits?.rpmLimit ?? null, maxBudgetPico: principal.keyLimits?.maxBudget ?? null, spendPico: await this.keySpend(customerId, principal.keyId!) },
      usage,
      credits: this.ctx.registry.isPrepaid(customer) ? creditSummary(await this.credits.balance(customerId)) : null,
    };
  }

  /** Lifetime charges of one key, from the ledger (exact whether or not the key has a cap). */
  private async keySpend(customerId: string, keyId: string): Promise<Pico> {
    await this.ctx.ledger.flush();
    const knex = this.ctx.orm.em.getConnection().getKnex();
    const result = await knex.raw(`select coalesce(sum(${CHARGE_SQL}), 0)::text as spend from spend_ledger where customer_id = ? and api_key_id = ?`, [customerId, keyId]);
    return BigInt((result.rows as { spend: string }[])[0]!.spend);
  }
}
