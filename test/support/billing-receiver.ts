/**
 * A local stand-in for Stripe's meter-event API and OpenMeter's event ingest, for tests. It
 * checks the wire format each client must send (Stripe: form-encoded `event_name`,
 * `payload[stripe_customer_id]`, `payload[value]`, `identifier`, `timestamp`, a bearer key;
 * OpenMeter: a structured CloudEvent) and answers as the real service does. Like Stripe, it
 * dedupes meter events by `identifier`: a repeat is acknowledged and counted, not recorded
 * twice. It can be down (port closed, reopened on the same port) or failing (HTTP 500).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MeterEvent {
  eventName: string;
  stripeCustomerId: string;
  value: string;
  identifier: string;
  timestamp: number;
}

export interface CloudEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  data: Record<string, unknown>;
}

export class BillingReceiver {
  /** First arrival of each identifier, in order. */
  readonly meterEvents: MeterEvent[] = [];
  readonly cloudEvents: CloudEvent[] = [];
  /** Requests whose wire format was wrong (a test expects none). */
  readonly malformed: string[] = [];
  duplicates = 0;
  arrivals = 0;
  mode: 'ok' | 'fail' = 'ok';
  port = 0;
  private server: Server | null = null;

  constructor(readonly stripeKey = 'sk_test_tollgate') {}

  get host(): string {
    return '127.0.0.1';
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = this.port): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.arrivals += 1;
        const body = Buffer.concat(chunks).toString('utf8');
        const reply = (status: number, json: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        if (this.mode === 'fail') return reply(500, { error: { type: 'api_error', message: 'receiver is failing' } });
        if (request.method === 'POST' && request.url === '/v1/billing/meter_events') {
          const problem = this.meterEventProblem(request.headers, body);
          if (problem) {
            this.malformed.push(problem);
            return reply(400, { error: { type: 'invalid_request_error', message: problem } });
          }
          const form = new URLSearchParams(body);
          const event: MeterEvent = {
            eventName: form.get('event_name')!,
            stripeCustomerId: form.get('payload[stripe_customer_id]')!,
            value: form.get('payload[value]')!,
            identifier: form.get('identifier')!,
            timestamp: Number(form.get('timestamp')),
          };
          if (this.meterEvents.some((e) => e.identifier === event.identifier)) this.duplicates += 1;
          else this.meterEvents.push(event);
          return reply(200, {
            object: 'billing.meter_event',
            created: Math.floor(Date.now() / 1000),
            event_name: event.eventName,
            identifier: event.identifier,
            livemode: false,
            payload: { stripe_customer_id: event.stripeCustomerId, value: event.value },
            timestamp: event.timestamp,
          });
        }
        if (request.method === 'POST' && request.url === '/api/v1/events') {
          const problem = this.cloudEventProblem(request.headers, body);
          if (problem) {
            this.malformed.push(problem);
            return reply(400, { title: 'Bad Request', detail: problem });
          }
          const event = JSON.parse(body) as CloudEvent;
          if (this.cloudEvents.some((e) => e.id === event.id && e.source === event.source)) this.duplicates += 1;
          else this.cloudEvents.push(event);
          response.writeHead(204).end();
          return;
        }
        this.malformed.push(`unexpected ${request.method} ${request.url}`);
        reply(404, { error: { message: `no route ${request.url}` } });
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private meterEventProblem(headers: IncomingHttpHeaders, body: string): string | null {
    if (headers.authorization !== `Bearer ${this.stripeKey}`) return `authorization header is ${JSON.stringify(headers.authorization)}`;
    if (!String(headers['content-type']).startsWith('application/x-www-form-urlencoded')) return `content-type is ${headers['content-type']}`;
    const form = new URLSearchParams(body);
    const keys = [...form.keys()].sort();
    const expected = ['event_name', 'identifier', 'payload[stripe_customer_id]', 'payload[value]', 'timestamp'];
    if (JSON.stringify(keys) !== JSON.stringify(expected)) return `form fields are ${keys.join(', ')}`;
    if (!/^\d+$/.test(form.get('payload[value]')!)) return `payload[value] is not an integer: ${form.get('payload[value]')}`;
    if (!/^\d{10}$/.test(form.get('timestamp')!)) return `timestamp is not Unix seconds: ${form.get('timestamp')}`;
    if (!/^cus_/.test(form.get('payload[stripe_customer_id]')!)) return `stripe_customer_id is ${form.get('payload[stripe_customer_id]')}`;
    return null;
  }

  private cloudEventProblem(headers: IncomingHttpHeaders, body: string): string | null {
    if (!String(headers['content-type']).startsWith('application/cloudevents+json')) return `content-type is ${headers['content-type']}`;
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return 'body is not JSON';
    }
    if (event.specversion !== '1.0') return `specversion is ${String(event.specversion)}`;
    for (const key of ['id', 'source', 'type', 'subject', 'time']) if (typeof event[key] !== 'string' || !event[key]) return `${key} is missing`;
    if (Number.isNaN(Date.parse(event.time as string))) return `time is not RFC 3339: ${String(event.time)}`;
    if (!event.data || typeof event.data !== 'object') return 'data is missing';
    return null;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  async waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (meter events: ${this.meterEvents.length}, cloud events: ${this.cloudEvents.length}, duplicates: ${this.duplicates}, arrivals: ${this.arrivals}, malformed: ${this.malformed.join("; ") || "none"})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
