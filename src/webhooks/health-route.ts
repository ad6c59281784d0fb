/**
 * @module `GET /health/services?service=webhook` (LiteLLM's route): sends a test event to
 * every WEBHOOK_URL now and reports each answer; 200 when all accepted it, else 503.
 */
import { Router, type Request, type Response } from 'express';
import type { Services } from '../services';
import { GatewayError } from '../shared/errors';

const SERVICES = ['webhook'];

export function healthRoutes(services: Services): Router {
  const router = Router();
  router.get('/services', async (request: Request, response: Response) => {
    const service = request.query.service;
    if (typeof service !== 'string' || !SERVICES.includes(service)) {
      throw new GatewayError('bad_request', `Query parameter service must be one of: ${SERVICES.join(', ')} (got ${service === undefined ? 'nothing' : JSON.stringify(service)}).`, 'service');
    }
    const result = await services.webhooks.sendTestEvent();
    const ok = result.deliveries.every((delivery) => delivery.ok);
    response.status(ok ? 200 : 503).json({
      status: ok ? 'success' : 'failure',
      service,
      event_id: result.eventId,
      deliveries: result.deliveries.map((delivery) => ({ url: delivery.url, ok: delivery.ok, status_code: delivery.statusCode, error: delivery.error })),
    });
  });
  return router;
}
