/**
 * @module The embedded store's own thread. PGlite is PostgreSQL compiled to WASM: every query
 * runs synchronously on the thread that owns it. On the gateway's main thread each ledger
 * flush, webhook outbox poll or admin query would stall every request in flight for as long
 * as the query runs; here it runs beside them, and the main thread reaches it over
 * pglite-socket's PostgreSQL wire protocol like any PostgreSQL: on a Unix socket, or on
 * 127.0.0.1 when it has no socket path.
 *
 * workerData: { pgDir, templatePath, socketPath }. Posts { path } or { port } once listening,
 * { error } on failure;
 * on the message 'stop' it closes the socket server and the database, then posts 'stopped'.
 */
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { fullCollection } from '../server/idle-collection';
import { embeddedStartParams } from './embedded-settings';

interface EmbeddedWorkerData {
  pgDir: string;
  templatePath: string;
  socketPath: string | null;
}

async function main(): Promise<void> {
  const { pgDir, templatePath, socketPath } = workerData as EmbeddedWorkerData;
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketHandler, PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  coalesceReplies(PGLiteSocketHandler.prototype);
  // Trigram indexes for customer search (migration 20261201092100).
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  const extensions = { pg_trgm };
  const startParams = embeddedStartParams(PGlite.defaultStartParams);
  const fresh = readdirSync(pgDir).length === 0;
  let db;
  if (fresh && existsSync(templatePath)) {
    db = await PGlite.create({ dataDir: pgDir, loadDataDir: new Blob([readFileSync(templatePath)]), extensions, startParams });
  } else {
    db = await PGlite.create({ dataDir: pgDir, extensions, startParams });
    if (fresh && !existsSync(templatePath)) {
      const dump = await db.dumpDataDir('gzip');
      const temporary = `${templatePath}.${process.pid}.${Date.now()}.tmp`;
      writeFileSync(temporary, Buffer.from(await dump.arrayBuffer()));
      renameSync(temporary, templatePath);
    }
  }
  const listenOn = socketPath ? { path: socketPath } : { host: '127.0.0.1', port: 0 };
  const server = new PGLiteSocketServer({ db, ...listenOn, maxConnections: 4 });
  await server.start();
  // Creating the data dir (unpacking the template, ~80 MB of ArrayBuffers, or dumping it) left
  // garbage for some later full collection, which an idle store thread may not have for hours.
  if (fresh) fullCollection()();
  const ready = socketPath ? { path: socketPath } : { port: Number(server.getServerConn().split(':').pop()) };
  parentPort!.on('message', (message) => {
    if (message !== 'stop') return;
    void (async () => {
      await server.stop();
      await db.close();
      parentPort!.postMessage('stopped');
    })();
  });
  parentPort!.postMessage(ready);
}

/**
 * pglite-socket writes each reply message (ParseComplete, BindComplete, each DataRow batch,
 * CommandComplete, ReadyForQuery) with a socket write of its own on a no-delay socket: five or
 * more system calls in this thread, and as many reads in the gateway's, for every query. The
 * replies to one incoming chunk are held (cork) and leave in one write. The library answers a
 * chunk from an immediate it schedules on 'data' (its queries then run in microtasks), so the
 * uncork, scheduled after it from a later 'data' listener, runs once they have all been
 * written. When a query has to wait (another connection's transaction holds the database),
 * the uncork just comes first and its replies leave as before: nothing is held back.
 */
function coalesceReplies(handler: { attach(socket: Socket): Promise<unknown> }): void {
  const attach = handler.attach;
  handler.attach = async function (this: unknown, socket: Socket) {
    const attached = await attach.call(this, socket);
    socket.on('data', () => {
      socket.cork();
      setImmediate(() => socket.uncork());
    });
    return attached;
  };
}

main().catch((error: Error) => parentPort!.postMessage({ error: error.stack ?? error.message }));
