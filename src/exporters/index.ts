/**
 * @module Wires usage exporters into a gateway: checks `tollgate.exporters` (before any port
 * opens), hooks the ledger so each batch's transaction also writes one export per exporter and
 * customer request, and runs the dispatcher. Registered before the ledger's crash recovery, so
 * requests replayed from the journal are exported too.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { GatewayConfig } from '../config/load';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../observability/logger';
import { ExportDispatcher } from './dispatcher';
import { enqueueExports, type NewExport } from './outbox';
import { exportBody } from './payloads';
import { parseExporterSettings } from './settings';

export interface Exporters {
  start(): void;
  stop(): Promise<void>;
}

/** Throws a ConfigError naming the key when an exporter setting is wrong. */
export function checkExporterSettings(config: GatewayConfig): void {
  parseExporterSettings(config);
}

export function setUpExporters(options: { config: GatewayConfig; orm: MikroORM; ledger: Ledger; logger: Logger; now: () => Date }): Exporters {
  const { config, orm, ledger, logger, now } = options;
  const exporters = parseExporterSettings(config);
  if (!exporters.length) return { start: () => undefined, stop: async () => undefined };
  const dispatcher = new ExportDispatcher(() => orm.em.getConnection().getKnex(), exporters, logger);

  ledger.addCommitHook(async (transaction, inserted) => {
    const createdAt = now();
    const rows: NewExport[] = [];
    for (const record of inserted) {
      // Billing systems bill a customer: a request without one has nobody to bill.
      if (!record.customerId) continue;
      for (const settings of exporters) {
        rows.push({ exporter: settings.name, requestId: record.requestId, customerId: record.customerId, body: exportBody(record, settings), createdAt, retryMaxAgeMs: settings.retryMaxAgeMs });
      }
    }
    if (!(await enqueueExports(transaction, rows))) return;
    return () => dispatcher.wake();
  });

  return { start: () => dispatcher.start(), stop: () => dispatcher.stop() };
}
