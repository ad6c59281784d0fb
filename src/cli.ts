/**
 * @module `tollgate start | control | proxy | migrate`. All read LiteLLM's config.yaml shape;
 * config errors name the key and stop before any port opens.
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from './config/load';
import { createLogger } from './observability/logger';
import { startGateway } from './server/gateway';
import { boundHeapGrowth } from './server/heap-growth';
import { openDatabase } from './store/database';

const USAGE = `Usage:
  tollgate start   [--config ./config.yaml] [--port 4000] [--host 0.0.0.0]   run the gateway (data + control plane)
  tollgate control [--config ./config.yaml] [--port 4001]                    the control plane only (REST, GraphQL, UI)
  tollgate proxy   [--config ./config.yaml] [--port 4000] --control-plane-url http://control:4001
                   the data plane; every other route is forwarded to the control plane
  tollgate migrate [--config ./config.yaml]                                 apply database migrations and exit

control and proxy need DATABASE_URL and REDIS_URL: run any number of proxies behind one control plane.

Environment: DATABASE_URL (PostgreSQL; default: embedded PGlite under TOLLGATE_DATA_DIR, ./.tollgate),
REDIS_URL (shared counters: exact budgets and rate limits across proxies; default: in memory, one
process), TOLLGATE_REDIS_PREFIX (Redis key prefix, default tollgate:), WEBHOOK_URL, WEBHOOK_SECRET, LOG_LEVEL, and any os.environ/NAME the config refers to.`;

/** A mistake on the command line: the message and the usage text, exit 2, never a stack trace. */
class UsageError extends Error {}

const COMMANDS = ['start', 'control', 'proxy', 'migrate', 'help'];

function parseCommandLine(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c', default: process.env.TOLLGATE_CONFIG ?? './config.yaml' },
        port: { type: 'string', short: 'p', default: process.env.PORT ?? '4000' },
        host: { type: 'string', default: process.env.HOST ?? '0.0.0.0' },
        'control-plane-url': { type: 'string', default: process.env.TOLLGATE_CONTROL_PLANE_URL },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    // node:util throws a TypeError (ERR_PARSE_ARGS_*) naming the option: that is the user's mistake.
    throw new UsageError((error as Error).message);
  }
  const { positionals, values } = parsed;
  const command = positionals[0] ?? 'start';
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command "${command}"`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" after "${command}"`);
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!.trim()) || !Number.isInteger(port) || port > 65535) throw new UsageError(`--port: "${values.port}" is not a port number (0 to 65535)`);
  if (values['control-plane-url'] !== undefined && !URL.canParse(values['control-plane-url'])) {
    throw new UsageError(`--control-plane-url: "${values['control-plane-url']}" is not a URL (e.g. http://control:4001)`);
  }
  return { command, port, values };
}

async function main(argv: string[]): Promise<void> {
  const { command, port, values } = parseCommandLine(argv);
  if (values.help || command === 'help') {
    console.log(USAGE);
    return;
  }
  const logger = createLogger();
  const config = loadConfigFile(values.config!);
  if (command === 'migrate') {
    const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
    await database.close();
    logger.info({ store: database.kind }, 'migrations applied');
    return;
  }
  const roles = { start: 'all', control: 'control', proxy: 'proxy' } as const;
  const role = roles[command as keyof typeof roles];
  // Before the gateway allocates anything it keeps: the factor applies from the first full collection.
  logger.info({ heapGrowth: boundHeapGrowth(config.heapGrowingPercent) }, 'heap growth between full collections');
  // Several proxies on one database without Redis would each enforce limits on their own
  // share of the traffic: say which mode is in force before anything else.
  if (config.redisUrl) logger.info({ sharedCounters: 'redis', redis: redactedUrl(config.redisUrl) }, 'shared counters: redis');
  else logger.info({ sharedCounters: 'memory' }, 'shared counters: memory (one process)');
  const gateway = await startGateway(config, { port, host: values.host, logger, role, controlPlaneUrl: values['control-plane-url'] });
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal }, 'stopping: draining requests and flushing the ledger');
    gateway.stop().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** The Redis URL without its password, for the log. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable REDIS_URL)';
  }
}

main(process.argv.slice(2)).catch((error) => {
  if (error instanceof UsageError) {
    console.error(`tollgate: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (error instanceof ConfigError) {
    console.error(`tollgate: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
