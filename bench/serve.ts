/**
 * Runs one benchmark target in a process of its own (so no target shares an event loop with
 * the load generator or with another target) and prints `LISTENING <url>` when ready.
 * Usage: node dist/bench/serve.js upstream | bare-node-http <upstream> | bare-undici <upstream> | bare-http-proxy <upstream>
 *   | required-io <upstream> <redis-url> <database-url> | required-io-embedded <upstream> <data-dir>
 */
import { startBareHttpProxy, startBareNodeHttpProxy, startBareUndiciProxy } from './bare-proxies';
import { startRequiredIoProxy } from './required-io-proxy';
import { startBenchUpstream } from './upstream';

async function main(): Promise<void> {
  const [kind, upstream, ...stores] = process.argv.slice(2);
  let url: string;
  if (kind === 'upstream') url = (await startBenchUpstream()).url;
  else if (kind === 'bare-node-http') url = (await startBareNodeHttpProxy(upstream!)).url;
  else if (kind === 'bare-undici') url = (await startBareUndiciProxy(upstream!)).url;
  else if (kind === 'bare-http-proxy') url = (await startBareHttpProxy(upstream!)).url;
  else if (kind === 'required-io') url = (await startRequiredIoProxy(upstream!, { kind: 'postgresql-redis', redisUrl: stores[0]!, databaseUrl: stores[1]! })).url;
  else if (kind === 'required-io-embedded') url = (await startRequiredIoProxy(upstream!, { kind: 'embedded', dataDir: stores[0]! })).url;
  else throw new Error(`unknown target ${kind}`);
  console.log(`LISTENING ${url}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
