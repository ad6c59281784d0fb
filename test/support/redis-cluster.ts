/**
 * A real 3-master Redis Cluster for one test file: three private redis-servers in cluster mode
 * (each in its own temp dir, on random free ports), joined with `redis-cli --cluster create`,
 * and torn down after.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisServer, type PrivateRedis } from './redis-server';

const run = promisify(execFile);

export interface PrivateCluster {
  nodes: { host: string; port: number }[];
  /** `redis+cluster://host:port,host:port,host:port`, as REDIS_URL takes it. */
  url: string;
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<PrivateCluster> {
  const servers: PrivateRedis[] = [];
  try {
    for (let i = 0; i < 3; i++) servers.push(await startRedisServer(['--cluster-enabled', 'yes', '--cluster-node-timeout', '5000']));
    const addresses = servers.map((server) => `127.0.0.1:${server.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    for (const server of servers) await waitForClusterOk(server.port);
    return {
      nodes: servers.map((server) => ({ host: '127.0.0.1', port: server.port })),
      url: `redis+cluster://${addresses.join(',')}`,
      stop: async () => {
        for (const server of servers) await server.stop();
      },
    };
  } catch (error) {
    for (const server of servers) await server.stop();
    throw error;
  }
}

async function waitForClusterOk(port: number): Promise<void> {
  const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (/cluster_state:ok/.test(String(await redis.call('CLUSTER', 'INFO')))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`cluster node on port ${port} never reported cluster_state:ok`);
  } finally {
    redis.disconnect();
  }
}
