/**
 * A real HTTP webhook receiver for tests. It can be down (port closed, then reopened on the
 * same port), failing (answers 500), or stalling (holds requests until released). An event
 * counts as received only when the receiver acknowledged it with 200, as a real receiver
 * that dedupes by `webhook-id` would.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedEvent {
  id: string;
  timestamp: string;
  signature: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
  payload: Record<string, unknown>;
}

export type ReceiverMode = 'ok' | 'fail' | 'stall';

export class WebhookReceiver {
  readonly received: ReceivedEvent[] = [];
  /** Every request that arrived, whatever the answer. */
  arrivals = 0;
  mode: ReceiverMode = 'ok';
  private readonly stalled: { response: ServerResponse; event: ReceivedEvent }[] = [];
  private server: Server | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  get stalledCount(): number {
    return this.stalled.length;
  }

  async start(port = this.port): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.arrivals += 1;
        const body = Buffer.concat(chunks).toString('utf8');
        const event: ReceivedEvent = {
          id: String(request.headers['webhook-id']),
          timestamp: String(request.headers['webhook-timestamp']),
          signature: request.headers['webhook-signature'] as string | undefined,
          headers: request.headers,
          body,
          payload: JSON.parse(body) as Record<string, unknown>,
        };
        if (this.mode === 'fail') {
          response.writeHead(500, { 'content-type': 'text/plain' }).end('receiver is failing');
        } else if (this.mode === 'stall') {
          this.stalled.push({ response, event });
        } else {
          this.received.push(event);
          response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Closes the port (connections refused until `start()` again). */
  async stop(): Promise<void> {
    if (!this.server) return;
    for (const { response } of this.stalled.splice(0)) response.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  /** Answers every held request with 200 and stops stalling. */
  release(): void {
    this.mode = 'ok';
    for (const { response, event } of this.stalled.splice(0)) {
      // A request Tollgate gave up on (timeout) was never acknowledged: it does not count.
      if (response.socket?.destroyed) continue;
      this.received.push(event);
      response.writeHead(200).end('{"ok":true}');
    }
  }

  events(filter: (payload: Record<string, unknown>) => boolean = () => true): ReceivedEvent[] {
    return this.received.filter((event) => filter(event.payload));
  }

  async waitFor(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${this.received.length} events: ${this.received.map((e) => e.payload.event).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
