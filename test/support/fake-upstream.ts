/**
 * What every fake provider a test starts has in common: a real HTTP server on a free
 * loopback port, streams that can be held open until `resume()`, and a stop that also
 * releases held streams and drops open connections.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export abstract class FakeUpstreamServer {
  protected resumeWaiters: (() => void)[] = [];
  protected port = 0;
  private server: Server | null = null;

  protected abstract handle(request: IncomingMessage, response: ServerResponse): Promise<void>;

  /** Lets streams held open by the behaviour continue. */
  resume(): void {
    for (const resolve of this.resumeWaiters.splice(0)) resolve();
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.resume();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }
}
