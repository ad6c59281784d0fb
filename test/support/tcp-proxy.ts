/**
 * A TCP forwarder the test can cut and restore, or stall and resume, to put a real outage
 * between Tollgate and its PostgreSQL or Redis without stopping the server other tests use.
 * A cut closes the sockets (the client sees it at once); a stall keeps them open and simply
 * stops forwarding bytes, as a dropped route or a dead peer does (the client sees nothing).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class CuttableTcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Every connection's two directions, so a stall can stop them all and a resume restart them. */
  private readonly links = new Set<{ client: Socket; upstream: Socket }>();
  private stalled = false;
  port = 0;

  constructor(private readonly targetHost: string, private readonly targetPort: number) {}

  async start(): Promise<this> {
    await this.listen(0);
    return this;
  }

  private async listen(port: number): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      const link = { client, upstream };
      this.links.add(link);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => {
          this.sockets.delete(socket);
          this.links.delete(link);
        });
        socket.on('error', () => socket.destroy());
      }
      // While stalled, a new connection is accepted (the TCP handshake completes) but no byte
      // crosses: exactly what a client sees through a black-holed route.
      if (this.stalled) this.pause(link);
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private pause(link: { client: Socket; upstream: Socket }): void {
    // Unpiping stops forwarding; what arrives meanwhile waits in the kernel and socket buffers.
    link.client.unpipe(link.upstream);
    link.upstream.unpipe(link.client);
    link.client.pause();
    link.upstream.pause();
  }

  /** Drops every open connection and refuses new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.stalled = false;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    await this.listen(this.port);
  }

  /** Stops forwarding bytes in both directions, keeping every connection open. */
  stall(): void {
    this.stalled = true;
    for (const link of this.links) this.pause(link);
  }

  /** Forwards again; the bytes held back during the stall are delivered, in order. */
  resume(): void {
    this.stalled = false;
    for (const { client, upstream } of this.links) {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  }

  async stop(): Promise<void> {
    await this.cut();
  }
}
