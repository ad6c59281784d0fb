/**
 * The `tollgate` command as a user runs it: `migrate` applies the migrations and exits,
 * a broken config stops start-up before any port opens with a message naming the key, and
 * `start` exits on SIGTERM/SIGINT after serving, as it runs in production (NODE_ENV unset,
 * unlike under vitest, which changes what some libraries do with signals).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshDataDir, MASTER_KEY, ROOT, spawnGateway, testConfigYaml } from './support/gateway';
import { createTestDatabase, queryDatabase } from './support/postgres';

function tollgate(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [join(ROOT, 'bin/tollgate.js'), ...args], { env: { ...process.env, VITEST: '', ...env }, encoding: 'utf8', timeout: 60_000 });
}

describe('tollgate CLI', () => {
  it('migrate applies every migration to PostgreSQL and exits 0', async () => {
    const database = await createTestDatabase();
    try {
      const dir = freshDataDir();
      writeFileSync(join(dir, 'config.yaml'), testConfigYaml());
      const result = tollgate(['migrate', '--config', join(dir, 'config.yaml')], { DATABASE_URL: database.url });
      expect(result.status, result.stderr + result.stdout).toBe(0);
      const tables = await queryDatabase<{ table_name: string }>(database.url, `select table_name from information_schema.tables where table_schema = 'public'`);
      expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['customers', 'budgets', 'spend_ledger', 'spend_counters', 'api_keys', 'tollgate_migrations']));
    } finally {
      await database.drop();
    }
  });

  it('refuses a broken config before opening a port, naming the key', () => {
    const dir = freshDataDir();
    const cases: [string, RegExp][] = [
      ['model_list: []\ngeneral_settings:\n  master_key: sk-1\n', /model_list: at least one model is required/],
      ['model_list:\n  - model_name: x\n    litellm_params:\n      model: nonsense\ngeneral_settings:\n  master_key: sk-1\n', /model_list\[0\]\.litellm_params\.model/],
      [testConfigYaml().replace('master_key: sk-1234', 'master_key: os.environ/UNSET_KEY_FOR_TEST'), /general_settings\.master_key/],
      ['{ not: yaml', /not valid YAML/],
      [testConfigYaml() + 'tollgate:\n  heap_growing_percent: -5\n', /tollgate\.heap_growing_percent/],
      [testConfigYaml() + 'tollgate:\n  malloc_mmap_threshold_kb: lots\n', /tollgate\.malloc_mmap_threshold_kb/],
    ];
    for (const [yaml, message] of cases) {
      const path = join(dir, 'broken.yaml');
      writeFileSync(path, yaml);
      const result = tollgate(['start', '--config', path, '--port', '0'], { TOLLGATE_DATA_DIR: dir });
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    const missing = tollgate(['start', '--config', join(dir, 'nope.yaml')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config file .*nope\.yaml/);
  });

  it('answers unknown options, commands and bad values with the usage text and exit 2, no stack trace', () => {
    const cases: [string[], RegExp][] = [
      [['start', '--bogus'], /Unknown option '--bogus'/],
      [['start', '-x'], /Unknown option '-x'/],
      [['start', '--port'], /--port/],
      [['start', '--port', 'abc'], /--port: "abc" is not a port number/],
      [['start', '--port', '70000'], /--port: "70000"/],
      [['start', '--help=yes'], /--help/],
      [['launch'], /unknown command "launch"/],
      [['start', 'extra'], /unexpected argument "extra"/],
      [['proxy', '--control-plane-url', 'not a url'], /--control-plane-url: "not a url" is not a URL/],
    ];
    for (const [args, message] of cases) {
      const result = tollgate(args);
      expect(result.status, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain('Usage:');
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack frames
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal} after serving and sitting idle`, async () => {
      const gateway = await spawnGateway({ yaml: testConfigYaml(), dataDir: freshDataDir(), env: { NODE_ENV: '' } });
      const response = await fetch(`${gateway.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
        body: JSON.stringify({ model: 'gpt-3.5-turbo', user: 'sleepy', messages: [{ role: 'user', content: 'good night' }] }),
      });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // idle, as a real deployment is before a stop
      const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
      gateway.child.kill(signal);
      const outcome = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))]);
      if (outcome === 'hung') await gateway.kill9();
      expect(outcome, gateway.output()).toBe(0);
    });
  }

  it('bounds the heap growth as configured, and leaves it to a --heap-growing-percent given to node', async () => {
    const configured = await spawnGateway({ yaml: testConfigYaml(), dataDir: freshDataDir() });
    await configured.stop();
    expect(configured.output()).toMatch(/"heapGrowth":\{"percent":50,"by":"config"\}/);
    const byNode = await spawnGateway({ yaml: testConfigYaml() + 'tollgate:\n  heap_growing_percent: 80\n', dataDir: freshDataDir(), nodeArgs: ['--heap-growing-percent=30'] });
    await byNode.stop();
    expect(byNode.output()).toMatch(/"heapGrowth":\{"by":"node-flag"\}/);
    const byV8 = await spawnGateway({ yaml: testConfigYaml() + 'tollgate:\n  heap_growing_percent: 0\n', dataDir: freshDataDir() });
    await byV8.stop();
    expect(byV8.output()).toMatch(/"heapGrowth":\{"by":"v8"\}/);
  });

  it.runIf(process.platform === 'linux')('holds glibc\'s mmap threshold as configured, and leaves it to GLIBC_TUNABLES or to glibc', async () => {
    const configured = await spawnGateway({ yaml: testConfigYaml(), dataDir: freshDataDir() });
    await configured.stop();
    expect(configured.output()).toMatch(/"malloc":\{"mmapThresholdKb":128,"by":"config"\}/);
    const byTunables = await spawnGateway({ yaml: testConfigYaml(), dataDir: freshDataDir(), env: { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=262144' } });
    await byTunables.stop();
    expect(byTunables.output()).toMatch(/"malloc":\{"by":"glibc-tunables"\}/);
    const byGlibc = await spawnGateway({ yaml: testConfigYaml() + 'tollgate:\n  malloc_mmap_threshold_kb: 0\n', dataDir: freshDataDir() });
    await byGlibc.stop();
    expect(byGlibc.output()).toMatch(/"malloc":\{"by":"glibc"\}/);
  });

  it('answers GraphQL errors without stack traces, as production runs it', async () => {
    const gateway = await spawnGateway({ yaml: testConfigYaml(), dataDir: freshDataDir(), env: { NODE_ENV: '' } });
    try {
      for (const query of ['{ nope }', 'mutation { createBudget(input: { maxBudget: "x" }) { id } }']) {
        const response = await fetch(`${gateway.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
          body: JSON.stringify({ query }),
        });
        expect(response.status).toBe(400);
        const body = (await response.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
        expect(body.errors[0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
        expect(body.errors[0]!.extensions).not.toHaveProperty('stacktrace');
      }
    } finally {
      await gateway.stop();
    }
  });
});
