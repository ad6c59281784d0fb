/**
 * A private redis-server for one test (a temp dir, a random free high port, no persistence),
 * for what the shared Redis cannot give: exact command statistics, or a server to kill.
 * Port 0 is not possible for redis-server, so a random port is tried until one is free.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface PrivateRedis {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startRedisServer(extraArgs: string[] = []): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-'));
  for (let attempt = 0; attempt < 20; attempt++) {
    // Below 50000: a cluster node also listens on port + 10000 (its cluster bus).
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const started = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 15_000);
      child.stdout!.on('data', () => {
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (started) return running(child, port, dir);
    child.kill('SIGKILL');
    if (output && !/Address already in use/.test(output)) throw new Error(`redis-server did not start:\n${output}`);
  }
  throw new Error('no free port for redis-server after 20 attempts');
}

function running(child: ChildProcess, port: number, dir: string): PrivateRedis {
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Calls per command name, from INFO commandstats (e.g. { evalsha: 12, publish: 6 }), and the
 * microseconds Redis spent in each (`usec:evalsha`; a script's time includes its commands).
 */
export async function commandCounts(url: string): Promise<Record<string, number>> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const info = await redis.info('commandstats');
    const counts: Record<string, number> = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      counts[match[1]!] = Number(match[2]);
      counts[`usec:${match[1]!}`] = Number(match[3]);
    }
    return counts;
  } finally {
    redis.disconnect();
  }
}
