/**
 * Summarises V8 `.cpuprofile` files (from `BENCH_CPU_PROF_DIR=… npm run bench`) as markdown:
 * the busy time of the serving phase (from the first sample inside the inference handler on;
 * start-up, migrations and idle time are left out; a thread that never serves, the embedded
 * store's worker, is counted whole), self time by module (a package under
 * node_modules, a Tollgate source file, or Node's internals) and by function, and total
 * (inclusive) time of Tollgate's own functions.
 * Usage: node dist/bench/profile-summary.js <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const NOT_WORK = new Set(['(idle)', '(program)', '(root)']);

/** `pino`, `@mikro-orm/core`, `src/governance/resolver.ts`, `node:internal/…` */
function moduleOf(url: string): string {
  if (!url) return '(native)';
  const packaged = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packaged) return packaged[1]!;
  const own = /\/dist\/((?:src|bench|migrations)\/.+)\.js$/.exec(url);
  if (own) return `${own[1]}.ts`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\/([^/]+).*/, 'node:internal/$1');
  return url;
}

const sum = (entries: Map<string, number>) => [...entries.values()].reduce((a, b) => a + b, 0);

function main(): void {
  const [file, topArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top]');
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const stackOf = (id: number): ProfileNode[] => {
    const stack: ProfileNode[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!);
    return stack;
  };
  // Serving starts with the first sample inside the inference handler's `handle` (not the module's load).
  const serving = (id: number) => stackOf(id).some((node) => node.callFrame.functionName === 'handle' && node.callFrame.url.endsWith('/data-plane/inference.js'));

  const selfByModule = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  const totalByOwnFunction = new Map<string, number>();
  /** For the heaviest native functions (socket writes, GC…): who calls them (the nearest 3 JS frames). */
  const nativeCallers = new Map<string, Map<string, number>>();
  let busy = 0;
  // A thread that never runs the handler (the embedded store's worker): all of it counts.
  let started = !profile.samples.some((id) => serving(id));
  for (let index = 0; index < profile.samples.length; index++) {
    const id = profile.samples[index]!;
    const micros = profile.timeDeltas[index + 1] ?? 0; // a sample lasts until the next one
    if (!started) started = serving(id);
    if (!started) continue;
    const node = byId.get(id)!;
    if (NOT_WORK.has(node.callFrame.functionName)) continue;
    busy += micros;
    const module = moduleOf(node.callFrame.url);
    const name = `${node.callFrame.functionName || '(anonymous)'} ${module}:${node.callFrame.lineNumber + 1}`;
    selfByModule.set(module, (selfByModule.get(module) ?? 0) + micros);
    selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + micros);
    if (module === '(native)') {
      const callers = stackOf(id)
        .slice(1)
        .filter((frame) => frame.callFrame.url)
        .slice(0, 3)
        .map((frame) => `${frame.callFrame.functionName || '(anonymous)'} ${moduleOf(frame.callFrame.url)}`)
        .join(' ← ');
      const byCaller = nativeCallers.get(name) ?? new Map<string, number>();
      byCaller.set(callers, (byCaller.get(callers) ?? 0) + micros);
      nativeCallers.set(name, byCaller);
    }
    const seen = new Set<string>();
    for (const frame of stackOf(id)) {
      const frameModule = moduleOf(frame.callFrame.url);
      if (!frameModule.startsWith('src/')) continue;
      const key = `${frame.callFrame.functionName || '(anonymous)'} ${frameModule}:${frame.callFrame.lineNumber + 1}`;
      if (seen.has(key)) continue; // recursion counts once
      seen.add(key);
      totalByOwnFunction.set(key, (totalByOwnFunction.get(key) ?? 0) + micros);
    }
  }
  const table = (title: string, entries: Map<string, number>) => {
    const rows = [...entries].sort((a, b) => b[1] - a[1]).slice(0, top);
    const lines = [`| ${title} | ms | % of busy |`, '|---|---|---|'];
    for (const [key, micros] of rows) lines.push(`| \`${key}\` | ${(micros / 1000).toFixed(0)} | ${((100 * micros) / busy).toFixed(1)} |`);
    return lines.join('\n');
  };
  console.log(`Busy (non-idle) time while serving: ${(busy / 1000).toFixed(0)} ms\n`);
  console.log(table('self time by module', selfByModule) + '\n');
  console.log(table('self time by function', selfByFunction) + '\n');
  console.log(table('total time, Tollgate functions', totalByOwnFunction) + '\n');
  const heaviestNative = [...nativeCallers].sort((a, b) => sum(b[1]) - sum(a[1])).slice(0, 4);
  for (const [name, callers] of heaviestNative) console.log(table(`callers of \`${name}\``, callers).replace(/\| `([^`]*)` \|/g, '| $1 |') + '\n');
}

main();
