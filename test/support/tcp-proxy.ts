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
  /** What a stall holds back: every byte, or only the replies (requests still reach the target). */
  private stalled: 'both' | 'replies' | null = null;
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
      client.pipe(upstream).pipe(client);
      // While stalled, a new connection is accepted (the TCP handshake completes) but no byte
      // crosses: exactly what a client sees through a black-holed route.
      if (this.stalled) this.pause(link, this.stalled);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private pause(link: { client: Socket; upstream: Socket }, direction: 'both' | 'replies'): void {
    // Unpiping stops forwarding; what arrives meanwhile waits in the kernel and socket buffers.
    link.upstream.unpipe(link.client);
    link.upstream.pause();
    if (direction === 'both') {
      link.client.unpipe(link.upstream);
      link.client.pause();
    }
  }

  /** Drops every open connection and refuses new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.stalled = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    await this.listen(this.port);
  }

  /**
   * Stops forwarding bytes, keeping every connection open: in both directions, or only the
   * replies (`'replies'`: the target receives and executes requests, the client never hears).
   */
  stall(direction: 'both' | 'replies' = 'both'): void {
    this.stalled = direction;
    for (const link of this.links) this.pause(link, direction);
  }

  /** Forwards again; the bytes held back during the stall are delivered, in order. */
  resume(): void {
    const direction = this.stalled;
    this.stalled = null;
    for (const { client, upstream } of this.links) {
      if (direction === 'both') client.pipe(upstream);
      upstream.pipe(client);
    }
  }

  async stop(): Promise<void> {
    await this.cut();
  }
}
