/**
 * @module Credit grants in the store, and each customer's credit state worked out from them and
 * the ledger (governance/credits.ts). Every query is on an index: grants by customer (the
 * unique (customer_id, reference) index), ledger rows by customer and time.
 */
import type { Knex } from '@mikro-orm/postgresql';
import { allocateCredits, allocationBoundaries, isActive, type CreditState, type GrantKind, type GrantRecord } from '../governance/credits';

type Queryable = Pick<Knex, 'raw'>;

export interface GrantRow {
  id: string;
  customer_id: string;
  reference: string;
  amount_pico: string;
  kind: string;
  expires_at: Date | string | null;
  voided_at: Date | string | null;
  created_by: string | null;
  created_at: Date | string;
}

export const GRANT_COLUMNS = 'id, customer_id, reference, amount_pico::text as amount_pico, kind, expires_at, voided_at, created_by, created_at';

export function grantOf(row: GrantRow): GrantRecord {
  return {
    id: row.id,
    customerId: row.customer_id,
    reference: row.reference,
    amount: BigInt(row.amount_pico),
    kind: row.kind as GrantKind,
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    voidedAt: row.voided_at === null ? null : new Date(row.voided_at),
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
  };
}

export async function readGrants(db: Queryable, customerIds: string[]): Promise<Map<string, GrantRecord[]>> {
  const byCustomer = new Map<string, GrantRecord[]>(customerIds.map((id) => [id, []]));
  if (!customerIds.length) return byCustomer;
  const result = await db.raw(`select ${GRANT_COLUMNS} from credit_grants where customer_id = any(?::text[]) order by created_at, id`, [customerIds]);
  for (const row of result.rows as GrantRow[]) byCustomer.get(row.customer_id)?.push(grantOf(row));
  return byCustomer;
}

/**
 * Each customer's credit state at `now`. With `full: false` (admission) the ledger is read only
 * for customers with a grant no longer active, the only ones whose consumption sets the limit.
 */
export async function loadCreditStates(db: Queryable, customerIds: string[], now: Date, options: { full?: boolean } = {}): Promise<Map<string, CreditState>> {
  const grants = await readGrants(db, customerIds);
  const states = new Map<string, CreditState>();
  const nowMs = now.getTime();
  for (const [customerId, own] of grants) {
    if (!own.length || (!options.full && own.every((grant) => isActive(grant, nowMs)))) {
      states.set(customerId, allocateCredits(own, [], new Map(), nowMs, customerId));
      continue;
    }
    const boundaries = allocationBoundaries(own, nowMs);
    const result = await db.raw(
      `select width_bucket(created_at, ?::timestamptz[]) as bucket, sum(credit_pico)::text as credits
       from spend_ledger where customer_id = ? and credit_pico > 0 group by 1`,
      [boundaries.map((ms) => new Date(ms).toISOString()), customerId],
    );
    const charges = new Map<number, bigint>((result.rows as { bucket: number | string; credits: string }[]).map((row) => [Number(row.bucket), BigInt(row.credits)]));
    states.set(customerId, allocateCredits(own, boundaries, charges, nowMs, customerId));
  }
  return states;
}
