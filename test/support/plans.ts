/** Reading PostgreSQL's `explain (analyze, format json)` output in tests. */
import type { Knex } from '@mikro-orm/postgresql';

/** Scan nodes of a plan that read `relation`, with the rows each returned over all its loops. */
export function scansOf(plan: Record<string, unknown>, relation: string): { node: string; rows: number }[] {
  const found: { node: string; rows: number }[] = [];
  const visit = (node: Record<string, unknown>) => {
    if (node['Relation Name'] === relation && String(node['Node Type']).includes('Scan')) {
      found.push({ node: String(node['Node Type']), rows: Number(node['Actual Rows']) * Number(node['Actual Loops'] ?? 1) });
    }
    for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) visit(child);
  };
  visit(plan);
  return found;
}

/**
 * The most rows any scan of `relation` returned while running `statement` under
 * `explain analyze`, inside a transaction that is rolled back (the statement's writes are undone).
 * Throws if the plan never reads `relation`.
 */
export async function mostRowsScanned(db: Knex, [sql, bindings]: [string, Knex.RawBinding[]], relation: string): Promise<number> {
  const trx = await db.transaction();
  const explained = await trx.raw(`explain (analyze, format json) ${sql}`, bindings);
  await trx.rollback();
  const plan = (explained.rows as { 'QUERY PLAN': { Plan: Record<string, unknown> }[] }[])[0]!['QUERY PLAN'][0]!.Plan;
  const scans = scansOf(plan, relation);
  if (!scans.length) throw new Error(`the plan reads no ${relation}`);
  return Math.max(...scans.map((scan) => scan.rows));
}
