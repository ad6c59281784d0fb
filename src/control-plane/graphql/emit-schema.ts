/** Writes schema.graphql from the code (`npm run schema`). */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { printGatewaySchema } from './schema';

const target = join(__dirname, '../../../../schema.graphql');
writeFileSync(target, printGatewaySchema());
console.log(`wrote ${target}`);
