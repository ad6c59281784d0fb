/**
 * @module Prepaid credits: the one place grants are made, voided and read (REST, GraphQL and
 * the console call this). A grant is idempotent by its reference (per customer); every grant
 * and void goes to the customer's audit trail in the same transaction. After a change, this
 * process's credit state is read again and the other processes are told ('credits' notice,
 * acknowledged before the call answers), so the next request everywhere sees the new balance.
 */
import { randomUUID } from 'node:crypto';
import { creditLimit, CREDITS_SCOPE, GRANT_KINDS, isActive, type CreditState, type GrantAllocation, type GrantKind, type GrantRecord } from '../governance/credits';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString, picoToDollars, type Pico } from '../shared/money';
import { GRANT_COLUMNS, grantOf, loadCreditStates, type GrantRow } from '../store/credit-store';
import type { ServiceContext } from './context';
import type { CustomerService } from './customers';
import { writeAudit } from './history';
import { invalid, parseAmount, parseDate, parseOptionalString } from './validation';

export interface GrantInput {
  customerId: unknown;
  amount: unknown;
  reference: unknown;
  kind?: unknown;
  expiresAt?: unknown;
}

export interface VoidInput {
  customerId: unknown;
  reference: unknown;
}

/** Field names on the wire: REST snake_case, GraphQL camelCase. */
export interface CreditFieldNames {
  customerId: string;
  amount: string;
  reference: string;
  kind: string;
  expiresAt: string;
}

export const SNAKE_CREDIT_NAMES: CreditFieldNames = { customerId: 'end_user_id', amount: 'amount', reference: 'reference', kind: 'kind', expiresAt: 'expires_at' };
export const CAMEL_CREDIT_NAMES: CreditFieldNames = { customerId: 'customerId', amount: 'amount', reference: 'reference', kind: 'kind', expiresAt: 'expiresAt' };

export type GrantStatus = 'active' | 'exhausted' | 'expired' | 'voided';

export interface GrantView extends GrantAllocation {
  /** What is left to spend of it now (0 once expired or voided). */
  remaining: Pico;
  status: GrantStatus;
}

export interface CreditBalance {
  customerId: string;
  prepaid: boolean;
  /** What the grants make usable: active grants' amounts plus what expired or voided ones had consumed. */
  granted: Pico;
  /** Credits consumed (the live counter every proxy admits against). */
  consumed: Pico;
  /** granted − consumed: below zero by at most the request that overshot. */
  balance: Pico;
  grants: GrantView[];
}

export interface GrantResult {
  grant: GrantRecord;
  /** false: the reference had granted already (same amount): nothing new was granted. */
  created: boolean;
  balance: CreditBalance;
}

const MAX_REFERENCE_LENGTH = 256;

export class CreditService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly customers: CustomerService,
  ) {}

  private knex() {
    return this.ctx.orm.em.getConnection().getKnex();
  }

  private async requireCustomer(raw: unknown, field: string): Promise<string> {
    if (typeof raw !== 'string' || !raw) throw invalid(field, 'is required (the customer id)');
    await this.customers.require(raw, field);
    return raw;
  }

  private reference(raw: unknown, field: string): string {
    const reference = parseOptionalString(field, raw, MAX_REFERENCE_LENGTH);
    if (!reference || !reference.trim()) throw invalid(field, 'is required: a unique idempotency key for this grant (e.g. your invoice or payment id)');
    return reference;
  }

  async grant(input: GrantInput, actor: string, names: CreditFieldNames = SNAKE_CREDIT_NAMES): Promise<GrantResult> {
    const amount = parseAmount(names.amount, input.amount);
    if (amount === undefined || amount === null) throw invalid(names.amount, 'is required (dollars, e.g. 10)');
    if (amount <= 0n) throw invalid(names.amount, `must be greater than 0, got ${JSON.stringify(input.amount)}`);
    const reference = this.reference(input.reference, names.reference);
    const kind = (parseOptionalString(names.kind, input.kind) ?? 'paid') as GrantKind;
    if (!GRANT_KINDS.includes(kind)) throw invalid(names.kind, `must be one of ${GRANT_KINDS.join(', ')}, got ${JSON.stringify(input.kind)}`);
    const expiresAt = parseDate(names.expiresAt, input.expiresAt) ?? null;
    const now = this.ctx.now();
    if (expiresAt && expiresAt.getTime() <= now.getTime()) throw invalid(names.expiresAt, `must be in the future, got ${JSON.stringify(input.expiresAt)}`);
    const customerId = await this.requireCustomer(input.customerId, names.customerId);
    const grant: GrantRecord = { id: randomUUID(), customerId, reference, amount, kind, expiresAt, voidedAt: null, createdBy: actor, createdAt: now };
    const stored = await this.ctx.orm.em.fork().transactional(async (em) => {
      const result = await em.execute<GrantRow[]>(
        `insert into credit_grants (id, customer_id, reference, amount_pico, kind, expires_at, voided_at, created_by, created_at)
         values (?, ?, ?, ?, ?, ?, null, ?, ?)
         on conflict (customer_id, reference) do nothing
         returning ${GRANT_COLUMNS}`,
        [grant.id, customerId, reference, amount.toString(), kind, expiresAt?.toISOString() ?? null, actor, now.toISOString()],
      );
      if (result[0]) {
        await writeAudit(em, {
          customerId,
          action: 'credits_granted',
          actor,
          changes: { credits: [null, { reference, amount: picoToDollars(amount), kind, expires_at: expiresAt?.toISOString() ?? null }] },
          createdAt: now,
        });
        return { grant: grantOf(result[0]), created: true };
      }
      const existing = await em.execute<GrantRow[]>(`select ${GRANT_COLUMNS} from credit_grants where customer_id = ? and reference = ?`, [customerId, reference]);
      const found = grantOf(existing[0]!);
      const sameExpiry = (found.expiresAt?.getTime() ?? null) === (expiresAt?.getTime() ?? null);
      if (found.amount !== amount || found.kind !== kind || (input.expiresAt !== undefined && !sameExpiry)) {
        throw new GatewayError(
          'conflict',
          `Credit grant reference "${reference}" was already used for Customer=${customerId} with amount $${picoToDecimalString(found.amount)} (${found.kind}${found.expiresAt ? `, expires ${found.expiresAt.toISOString()}` : ''}); this request asks for $${picoToDecimalString(amount)} (${kind}). A reference grants once: use a new reference for a new grant.`,
          names.reference,
        );
      }
      return { grant: found, created: false };
    });
    if (stored.created) await this.changed(customerId);
    return { ...stored, balance: await this.balance(customerId, names.customerId) };
  }

  /** Voids a grant by reference: its unconsumed remainder leaves the balance, what it paid for stays consumed. Idempotent. */
  async void(input: VoidInput, actor: string, names: CreditFieldNames = SNAKE_CREDIT_NAMES): Promise<{ grant: GrantRecord; voided: boolean; balance: CreditBalance }> {
    const reference = this.reference(input.reference, names.reference);
    const customerId = await this.requireCustomer(input.customerId, names.customerId);
    const now = this.ctx.now();
    // The ledger first: what the grant had paid for until now counts as consumed from it.
    await this.ctx.ledger.flush();
    const outcome = await this.ctx.orm.em.fork().transactional(async (em) => {
      const updated = await em.execute<GrantRow[]>(
        `update credit_grants set voided_at = ? where customer_id = ? and reference = ? and voided_at is null returning ${GRANT_COLUMNS}`,
        [now.toISOString(), customerId, reference],
      );
      if (updated[0]) {
        const grant = grantOf(updated[0]);
        await writeAudit(em, {
          customerId,
          action: 'credits_voided',
          actor,
          changes: { credits: [{ reference, amount: picoToDollars(grant.amount), kind: grant.kind }, null] },
          createdAt: now,
        });
        return { grant, voided: true };
      }
      const existing = await em.execute<GrantRow[]>(`select ${GRANT_COLUMNS} from credit_grants where customer_id = ? and reference = ?`, [customerId, reference]);
      if (!existing[0]) throw new GatewayError('not_found', `Customer=${customerId} has no credit grant with reference "${reference}".`, names.reference);
      return { grant: grantOf(existing[0]), voided: false };
    });
    if (outcome.voided) await this.changed(customerId);
    return { ...outcome, balance: await this.balance(customerId, names.customerId) };
  }

  /** The balance and every grant, from the ledger (flushed first) and the live credits counter. */
  async balance(customerIdRaw: unknown, field = 'end_user_id'): Promise<CreditBalance> {
    const customerId = await this.requireCustomer(customerIdRaw, field);
    await this.ctx.ledger.flush();
    const now = this.ctx.now();
    const state = (await loadCreditStates(this.knex(), [customerId], now, { full: true })).get(customerId)!;
    // Read first: a customer not cached here has its counters seeded by the read.
    const customer = this.ctx.registry.customers.peek(customerId) ?? (await this.ctx.registry.customers.find(customerId)) ?? undefined;
    const live = await this.ctx.spendBook.spendOf({ customerId, scope: CREDITS_SCOPE, periodStartMs: 0 }).catch(() => 0n);
    return balanceOf(state, now.getTime(), live, this.ctx.registry.isPrepaid(customer));
  }

  /** This process reads the state again; the others are told and have applied it when this returns. */
  private async changed(customerId: string): Promise<void> {
    const states = await loadCreditStates(this.knex(), [customerId], this.ctx.now());
    this.ctx.registry.credits.set(states.get(customerId)!);
    await this.ctx.invalidation.publish([{ kind: 'credits', id: customerId }]);
  }
}

/** The balance from an allocated state and the live counter (the ledger's total when the counter is behind it, e.g. not seeded). */
export function balanceOf(state: CreditState, nowMs: number, liveConsumed: Pico, prepaid: boolean): CreditBalance {
  const ledgerConsumed = state.grants.reduce((sum, grant) => sum + grant.consumed, 0n) + state.debt;
  const consumed = liveConsumed > ledgerConsumed ? liveConsumed : ledgerConsumed;
  const granted = creditLimit(state, nowMs);
  const grants = state.grants.map((grant): GrantView => {
    const active = isActive(grant, nowMs);
    const remaining = active ? grant.amount - grant.consumed : 0n;
    const status: GrantStatus = grant.voidedAt && grant.voidedAt.getTime() <= nowMs ? 'voided' : !active && grant.expiresAt ? 'expired' : remaining <= 0n ? 'exhausted' : 'active';
    return { ...grant, remaining, status };
  });
  return { customerId: state.customerId, prepaid, granted, consumed, balance: granted - consumed, grants };
}
