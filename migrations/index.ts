/**
 * Static list of migrations, so they load the same under tsc output and under vitest
 * (MikroORM would otherwise require the .ts files natively: STACK.md pitfall 13).
 * `npm run migration:create` writes a new file here; add it to this list, in order.
 */
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261128164407 } from './Migration20261128164407';
import { Migration20261128170416 } from './Migration20261128170416';
import { Migration20261201090000 } from './Migration20261201090000';
import { Migration20261201110000 } from './Migration20261201110000';

export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261128164407', class: Migration20261128164407 },
  { name: 'Migration20261128170416', class: Migration20261128170416 },
  { name: 'Migration20261201090000', class: Migration20261201090000 },
  { name: 'Migration20261201110000', class: Migration20261201110000 },
];
