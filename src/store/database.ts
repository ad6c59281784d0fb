/**
 * @module Opens the one store Tollgate uses: PostgreSQL when DATABASE_URL is set, otherwise
 * PGlite (PostgreSQL in WASM) under the data dir, reached through pglite-socket so MikroORM's
 * ordinary `pg` driver, the same SQL and the same migrations serve both (STACK.md §P4).
 */
import { mkdirSync, existsSync, readdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { ALL_ENTITIES } from './entities';
import { migrationsList } from '../../migrations';

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
    return {
      orm,
      kind: 'pglite',
      close: async () => {
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
    extensions: [Migrator],
    debug: options.debug ?? false,
    logger: options.log ?? (() => undefined),
    allowGlobalContext: false,
    pool: { min: 0, max: poolMax },
    migrations: { migrationsList, tableName: 'tollgate_migrations', transactional: true, allOrNothing: true, snapshot: false },
    discovery: { warnWhenNoEntities: false },
  });
}

export async function runMigrations(orm: MikroORM): Promise<void> {
  await orm.getMigrator().up();
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

async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  // Trigram indexes for customer search (migration 20261201092100).
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  const extensions = { pg_trgm };
  const pgDir = join(dataDir, 'pgdata');
  mkdirSync(pgDir, { recursive: true });
  const fresh = readdirSync(pgDir).length === 0;
  let db;
  if (fresh && existsSync(TEMPLATE_PATH)) {
    const template = new Blob([readFileSync(TEMPLATE_PATH)]);
    db = await PGlite.create({ dataDir: pgDir, loadDataDir: template, extensions });
  } else {
    db = await PGlite.create({ dataDir: pgDir, extensions });
    if (fresh && !existsSync(TEMPLATE_PATH)) {
      const dump = await db.dumpDataDir('gzip');
      const temporary = `${TEMPLATE_PATH}.${process.pid}.tmp`;
      writeFileSync(temporary, Buffer.from(await dump.arrayBuffer()));
      renameSync(temporary, TEMPLATE_PATH);
    }
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  const address = server.getServerConn(); // "127.0.0.1:PORT"
  return {
    url: `postgresql://postgres@${address}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
