/** Reading PostgreSQL's `explain (analyze, format json)` output in tests. */

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
