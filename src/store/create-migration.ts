/**
 * Writes a new migration into migrations/ from the difference between the entities and the
 * schema of DATABASE_URL (default: the local test PostgreSQL). Run: npm run migration:create
 */
import 'reflect-metadata';
import { join } from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { ALL_ENTITIES } from './entities';
import { migrationsList } from '../../migrations';

async function main(): Promise<void> {
  const orm = await MikroORM.init({
    clientUrl: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/tollgate_migrations_scratch',
    entities: ALL_ENTITIES,
    extensions: [Migrator],
    migrations: { migrationsList, tableName: 'tollgate_migrations', pathTs: join(__dirname, '../../../migrations'), path: join(__dirname, '../../../migrations'), emit: 'ts' },
  });
  await orm.getMigrator().up();
  const result = await orm.getMigrator().createMigration(undefined, false, false);
  console.log(result.fileName ? `wrote migrations/${result.fileName}; add it to migrations/index.ts` : 'schema is up to date');
  await orm.close(true);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
