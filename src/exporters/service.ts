/**
 * @module Usage export administration for REST and GraphQL: list exports by status (the
 * dead-letter list is `failed`), retry failed ones, read each exporter's backlog and lag.
 * Works through the database only, so a retry issued on any process is picked up by whichever
 * process's dispatcher polls next.
 */
import type { ServiceContext } from '../services/context';
import { GatewayError } from '../shared/errors';
import { EXPORT_STATUSES, exportBacklog, listExports, retryFailedExports, type ExporterBacklog, type ExportRow, type ExportStatus } from './outbox';
import { parseExporterSettings, type ExporterSettings } from './settings';

export interface ExportPage {
  rows: ExportRow[];
  hasMore: boolean;
}

export class ExporterService {
  readonly exporters: ExporterSettings[];

  constructor(private readonly ctx: ServiceContext) {
    this.exporters = parseExporterSettings(ctx.config);
  }

  private get database() {
    return this.ctx.orm.em.getConnection().getKnex();
  }

  private requireExporter(name: string | null): void {
    if (name === null || this.exporters.some((e) => e.name === name)) return;
    const known = this.exporters.map((e) => e.name);
    throw new GatewayError('not_found', `No exporter named "${name}"${known.length ? ` (configured: ${known.join(', ')})` : ' (none is configured in tollgate.exporters)'}.`, 'exporter');
  }

  async list(status: ExportStatus, exporter: string | null, first: number, offset: number): Promise<ExportPage> {
    if (!EXPORT_STATUSES.includes(status)) throw new GatewayError('bad_request', `status must be one of ${EXPORT_STATUSES.join(', ')}.`, 'status');
    if (!Number.isInteger(first) || first < 1 || first > 1000) throw new GatewayError('bad_request', 'first must be an integer from 1 to 1000.', 'first');
    if (!Number.isInteger(offset) || offset < 0) throw new GatewayError('bad_request', 'offset must be an integer >= 0.', 'offset');
    this.requireExporter(exporter);
    const rows = await listExports(this.database, status, exporter, first + 1, offset);
    return { rows: rows.slice(0, first), hasMore: rows.length > first };
  }

  /** Retries failed exports now: of one exporter and/or one request, or all; returns how many. */
  async retry(exporter: string | null, requestId: string | null): Promise<number> {
    this.requireExporter(exporter);
    const maxAges = Object.fromEntries(this.exporters.map((e) => [e.name, e.retryMaxAgeMs]));
    const retried = await retryFailedExports(this.database, exporter, requestId, maxAges);
    if (requestId !== null && !retried) {
      throw new GatewayError('conflict', `Nothing to retry: request ${requestId} has no failed export${exporter ? ` for ${exporter}` : ''} (pending exports are retried automatically).`, 'request_id');
    }
    if (retried) this.ctx.logger.info({ exporter, requestId, exports: retried }, 'usage export retry requested');
    return retried;
  }

  /** Every configured exporter's backlog (zeros when it has none). */
  async backlog(): Promise<ExporterBacklog[]> {
    const rows = await exportBacklog(this.database);
    return this.exporters.map((e) => rows.find((row) => row.exporter === e.name) ?? { exporter: e.name, pending: 0, failed: 0, lagSeconds: 0 });
  }
}
