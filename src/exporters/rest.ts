/**
 * @module REST for usage exports (admin key): `GET /exporters` (each exporter's backlog and
 * lag), `GET /exporters/events?status=failed` (the dead-letter list; also pending, delivered)
 * and `POST /exporters/retry` (failed exports due again now). A thin adapter over ExporterService.
 */
import { Router, type Request, type Response } from 'express';
import type { Services } from '../services';
import { invalid, parseOptionalString, requireObject } from '../services/validation';
import type { ExportRow, ExportStatus } from './outbox';

function exportJson(row: ExportRow) {
  return {
    exporter: row.exporter,
    request_id: row.requestId,
    customer_id: row.customerId,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: row.nextAttemptAt,
    give_up_at: row.giveUpAt,
    last_attempt_at: row.lastAttemptAt,
    last_error: row.lastError,
    delivered_at: row.deliveredAt,
    created_at: row.createdAt,
    event: JSON.parse(row.body) as unknown,
  };
}

function optionalQueryString(request: Request, name: string): string | null {
  const value = request.query[name];
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string') throw invalid(name, 'must be a single string');
  return value;
}

function optionalQueryInteger(request: Request, name: string, fallback: number): number {
  const value = optionalQueryString(request, name);
  if (value === null) return fallback;
  if (!/^\d+$/.test(value)) throw invalid(name, 'must be a non-negative integer');
  return Number(value);
}

export function exporterRoutes(services: Services): Router {
  const router = Router();
  router.get('/', async (_request: Request, response: Response) => {
    const backlog = await services.exporters.backlog();
    response.json(
      services.exporters.exporters.map((settings) => {
        const row = backlog.find((b) => b.exporter === settings.name)!;
        return { name: settings.name, type: settings.type, pending: row.pending, failed: row.failed, lag_seconds: row.lagSeconds };
      }),
    );
  });
  router.get('/events', async (request: Request, response: Response) => {
    const status = (optionalQueryString(request, 'status') ?? 'failed') as ExportStatus;
    const limit = optionalQueryInteger(request, 'limit', 100);
    const offset = optionalQueryInteger(request, 'offset', 0);
    const page = await services.exporters.list(status, optionalQueryString(request, 'exporter'), limit, offset);
    response.setHeader('x-has-more', String(page.hasMore));
    response.json(page.rows.map(exportJson));
  });
  router.post('/retry', async (request: Request, response: Response) => {
    const body = request.body === undefined ? {} : requireObject(request.body);
    const exporter = parseOptionalString('exporter', body.exporter) ?? null;
    const requestId = parseOptionalString('request_id', body.request_id) ?? null;
    response.json({ retried: await services.exporters.retry(exporter, requestId) });
  });
  return router;
}
