/**
 * @module Opens the one store Tollgate uses: PostgreSQL when DATABASE_URL is set, otherwise
 * PGlite (PostgreSQL in WASM) under the data dir, reached through pglite-socket so MikroORM's
 * ordinary `pg` driver, the same SQL and the same migrations serve both (STACK.md §P4).
 */
import { mkdirSync, mkdtempSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { MikroORM, type IMigrator } from '@mikro-orm/postgresql';
import { EMBEDDED_THREAD_LIMITS } from './embedded-settings';
import { EmbeddedVacuum, type EmbeddedVacuumOptions } from './embedded-vacuum';
import { ALL_ENTITIES } from './entities';

export interface Database {
  orm: MikroORM;
  kind: 'pglite' | 'postgresql';
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  migrate?: boolean;
  poolMax?: number;
  debug?: boolean;
  /** Where MikroORM's own messages (migrator progress) go; default: dropped. */
  log?: (message: string) => void;
  /** The embedded store's periodic vacuum (see embedded-vacuum.ts); off for one-shot commands. */
  vacuum?: { onError: (error: unknown) => void; options?: EmbeddedVacuumOptions };
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) {
    const orm = await initOrm(options.databaseUrl, options.poolMax ?? 10, options);
    if (options.migrate !== false) await runMigrations(orm);
    return { orm, kind: 'postgresql', close: () => orm.close(true) };
  }
  const embedded = await startEmbeddedPostgres(options.dataDir);
  try {
    // One PGlite session serialises everything; a single pooled connection avoids
    // "Connection terminated unexpectedly" (STACK.md pitfall 18).
    const orm = await initOrm(embedded.url, 1, options);
    if (options.migrate !== false) await runMigrations(orm);
    const vacuum = options.vacuum ? new EmbeddedVacuum(() => orm.em.getConnection().getKnex(), options.vacuum.onError, options.vacuum.options) : null;
    vacuum?.start();
    return {
      orm,
      kind: 'pglite',
      close: async () => {
        await vacuum?.stop();
        await orm.close(true);
        await embedded.stop();
      },
    };
  } catch (error) {
    await embedded.stop();
    throw error;
  }
}

async function initOrm(clientUrl: string, poolMax: number, options: DatabaseOptions): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl,
    entities: ALL_ENTITIES,
    debug: options.debug ?? false,
    logger: options.log ?? (() => undefined),
    allowGlobalContext: false,
    pool: { min: 0, max: poolMax },
    // The migration classes and the migrator (umzug and its ~300 modules) are loaded only when
    // one is pending: runMigrations.
    migrations: { tableName: MIGRATIONS_TABLE, transactional: true, allOrNothing: true, snapshot: false },
    discovery: { warnWhenNoEntities: false },
  });
}

const MIGRATIONS_TABLE = 'tollgate_migrations';
/** Where the compiled (dist/migrations) or source (migrations/) migration files are. */
const MIGRATIONS_DIR = join(__dirname, '../../migrations');

/** The migrations this build has, by file name, without loading them. */
function migrationNames(): string[] {
  return readdirSync(MIGRATIONS_DIR).flatMap((file) => /^(Migration\d+)\.(?:js|ts)$/.exec(file)?.[1] ?? []);
}

async function pendingMigrations(orm: MikroORM): Promise<boolean> {
  let applied: Set<string>;
  try {
    const rows = await orm.em.getConnection().execute<{ name: string }[]>(`select name from ${MIGRATIONS_TABLE}`);
    applied = new Set(rows.map((row) => row.name));
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') return true; // undefined_table: a new database
    throw error;
  }
  return migrationNames().some((name) => !applied.has(name));
}

/** Applies the pending migrations; a store that has them all costs one read. */
export async function runMigrations(orm: MikroORM): Promise<void> {
  if (!(await pendingMigrations(orm))) return;
  await (await loadMigrator(orm)).up();
}

/** The migrator with this build's migrations, loaded on first use. */
export async function loadMigrator(orm: MikroORM): Promise<IMigrator> {
  const [{ Migrator }, { migrationsList }] = await Promise.all([import('@mikro-orm/migrations'), import('../../migrations/index.js')]);
  Object.assign(orm.config.get('migrations'), { migrationsList });
  Migrator.register(orm);
  return orm.getMigrator();
}

interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * A cold PGlite initdb takes 8–12 s; loading a gzip dump of a fresh cluster takes ~2 s.
 * The first cold start leaves such a template in the OS temp dir for every later new
 * data dir (tests, new installs) to start from.
 */
const TEMPLATE_PATH = join(tmpdir(), 'tollgate-pglite-0.5.14-template.tar.gz');

/**
 * The worker's compiled file. Run from the TypeScript sources (vitest), the worker still
 * runs plain Node, so it takes the build's copy (`npm test` builds first).
 */
function workerScript(): string {
  const beside = join(__dirname, 'embedded-postgres-worker.js');
  if (existsSync(beside)) return beside;
  const built = join(__dirname, '../../dist/src/store/embedded-postgres-worker.js');
  if (existsSync(built)) return built;
  throw new Error(`the embedded store's worker is not built (${built}): run npm run build`);
}

/**
 * Where the store thread listens: a Unix socket in a directory only this user can enter
 * (mkdtemp makes it 0700). Loopback TCP took the kernel's TCP path for every query, both ways,
 * and let any local user reach a store that asks for no password. A temp dir whose socket path
 * would pass the kernel's limit (108 bytes) falls back to 127.0.0.1. The name carries the
 * process id, so a later start removes what a process killed with SIGKILL left behind.
 */
function socketDirectory(): string | null {
  removeDeadSocketDirectories();
  const dir = mkdtempSync(join(tmpdir(), `${SOCKET_DIR_PREFIX}${process.pid}-`));
  if (Buffer.byteLength(join(dir, EMBEDDED_SOCKET_FILE)) < 100) return dir;
  rmSync(dir, { recursive: true, force: true });
  return null;
}

const SOCKET_DIR_PREFIX = 'tollgate-pg-';
/** `tollgate-pg-<pid>-<random>`: the pid of the process that made it. */
const SOCKET_DIR_NAME = new RegExp(`^${SOCKET_DIR_PREFIX}(\\d+)-`);

function removeDeadSocketDirectories(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(SOCKET_DIR_NAME.exec(name)?.[1]);
    if (!pid || processAlive(pid)) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      /* another user's, or already gone */
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** The file name `pg` looks for in a socket directory (`.s.PGSQL.<port>`). */
const EMBEDDED_SOCKET_PORT = 5432;
const EMBEDDED_SOCKET_FILE = `.s.PGSQL.${EMBEDDED_SOCKET_PORT}`;

/** PGlite in a thread of its own (see embedded-postgres-worker.ts), reached over a Unix socket. */
async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const pgDir = join(dataDir, 'pgdata');
  mkdirSync(pgDir, { recursive: true });
  const socketDir = socketDirectory();
  const removeSocketDir = () => socketDir && rmSync(socketDir, { recursive: true, force: true });
  const socketPath = socketDir && join(socketDir, EMBEDDED_SOCKET_FILE);
  const worker = new Worker(workerScript(), { workerData: { pgDir, templatePath: TEMPLATE_PATH, socketPath }, resourceLimits: EMBEDDED_THREAD_LIMITS });
  let address: string;
  try {
    address = await new Promise<string>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the embedded store's thread exited with code ${code} before it was ready`)));
      worker.once('message', (message: { port?: number; path?: string; error?: string }) => {
        if (message.path) resolve(`${encodeURIComponent(socketDir!)}:${EMBEDDED_SOCKET_PORT}`);
        else if (message.port) resolve(`127.0.0.1:${message.port}`);
        else reject(new Error(`the embedded store could not start: ${message.error}`));
      });
    });
  } catch (error) {
    removeSocketDir();
    throw error;
  }
  worker.removeAllListeners('exit');
  worker.removeAllListeners('error');
  return {
    url: `postgresql://postgres@${address}/postgres`,
    stop: async () => {
      const stopped = new Promise<void>((resolve) => {
        worker.on('message', (message) => message === 'stopped' && resolve());
        worker.once('exit', () => resolve());
      });
      worker.postMessage('stop');
      await stopped;
      await worker.terminate();
      removeSocketDir();
    },
  };
}
