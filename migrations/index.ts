/**
 * Static list of migrations, so they load the same under tsc output and under vitest
 * (MikroORM would otherwise require the .ts files natively: STACK.md pitfall 13).
 * `npm run migration:create` writes a new file here; add it to this list, in order.
 */
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261128164407 } from './Migration20261128164407';
import { Migration20261128170416 } from './Migration20261128170416';
import { Migration20261201090825 } from './Migration20261201090825';
import { Migration20261201092100 } from './Migration20261201092100';
import { Migration20261201092317 } from './Migration20261201092317';
import { Migration20261201093000 } from './Migration20261201093000';
import { Migration20261201100000 } from './Migration20261201100000';
import { Migration20261201101000 } from './Migration20261201101000';
import { Migration20261201110000 } from './Migration20261201110000';
import { Migration20261201120000 } from './Migration20261201120000';
import { Migration20261201121000 } from './Migration20261201121000';
import { Migration20261201123000 } from './Migration20261201123000';
import { Migration20261201130000 } from './Migration20261201130000';

export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261128164407', class: Migration20261128164407 },
  { name: 'Migration20261128170416', class: Migration20261128170416 },
  { name: 'Migration20261201090825', class: Migration20261201090825 },
  { name: 'Migration20261201092100', class: Migration20261201092100 },
  { name: 'Migration20261201092317', class: Migration20261201092317 },
  { name: 'Migration20261201093000', class: Migration20261201093000 },
  { name: 'Migration20261201100000', class: Migration20261201100000 },
  { name: 'Migration20261201101000', class: Migration20261201101000 },
  { name: 'Migration20261201110000', class: Migration20261201110000 },
  { name: 'Migration20261201120000', class: Migration20261201120000 },
  { name: 'Migration20261201121000', class: Migration20261201121000 },
  { name: 'Migration20261201123000', class: Migration20261201123000 },
  { name: 'Migration20261201130000', class: Migration20261201130000 },
];
