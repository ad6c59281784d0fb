/**
 * GraphQL documents built to exhaust a server: fragments spread many times at many levels
 * (2^depth or worse paths for a walker that does not measure each fragment once), many
 * aliases, and deep introspection.
 */

/** `levels` fragments on Customer, each spreading the one below `spreads` times (a few KB). */
export function nestedFragmentSpreads(levels = 20, spreads = 20): string {
  const fragments = ['fragment L0 on Customer { id alias }'];
  for (let level = 1; level < levels; level++) {
    fragments.push(`fragment L${level} on Customer { ${`...L${level - 1} `.repeat(spreads).trim()} }`);
  }
  return `query Hostile { customer(id: "anyone") { ...L${levels - 1} } }\n${fragments.join('\n')}`;
}

export function manyAliases(count: number): string {
  return `query { ${Array.from({ length: count }, (_, i) => `a${i}: budgets { id customerCount }`).join(' ')} }`;
}

/** `__type` nested through `ofType` `depth` times. */
export function deepIntrospection(depth: number): string {
  let inner = 'name';
  for (let i = 0; i < depth; i++) inner = `ofType { ${inner} }`;
  return `query { __type(name: "Query") { fields { type { ${inner} } } } }`;
}
