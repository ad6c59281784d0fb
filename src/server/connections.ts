/**
 * @module The server's sockets: slow-client timeouts, connection caps (global and per client
 * address), and the graceful drain. node:http keeps the timeouts; this module counts sockets,
 * refuses those over a cap with a one-line HTTP answer, and on stop lets every request in
 * flight finish while turning each connection into its last request.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { ConnectionLimits } from '../config/load';
import type { Logger } from '../observability/logger';

/**
 * While draining, a socket without a request for this long is closed. Sooner would race a
 * client that is sending its next request on it this very moment (the kernel already holds
 * the bytes, node has not read them): that request would be reset instead of answered.
 */
const DRAIN_IDLE_GRACE_MS = 1_000;
const DRAIN_SWEEP_INTERVAL_MS = 100;

interface SocketState {
  address: string;
  activeRequests: number;
  idleSince: number;
  /** Handed to a WebSocket: closed by its own server on stop, not by the drain. */
  upgraded: boolean;
}

/** The server options that carry the timeouts; pass them to createServer. */
export function serverTimeoutOptions(limits: ConnectionLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // node checks the two request timeouts on this period (default 30 s): a fraction of the shorter one.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

export class ConnectionGuard {
  private readonly sockets = new Map<Socket, SocketState>();
  private readonly perAddress = new Map<string, number>();
  private readonly openResponses = new Set<ServerResponse>();
  /** Sockets over a cap: answered and closing; a request parsed on one meanwhile is dropped. */
  private readonly refused = new WeakSet<Socket>();
  private draining = false;

  constructor(
    private readonly server: Server,
    private readonly limits: ConnectionLimits,
    private readonly logger: Logger,
  ) {
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('upgrade', (_request: IncomingMessage, socket: Socket) => {
      const state = this.sockets.get(socket);
      if (state) state.upgraded = true;
    });
  }

  /** Requests tracked since start (what the idle collector watches for). */
  requestsSeen = 0;

  /** Responses not yet closed. */
  get openRequests(): number {
    return this.openResponses.size;
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  /**
   * Call first for every request: counts it on its socket and, once stopping, makes it the
   * connection's last. False for a request on a refused socket: do not serve it.
   */
  track(request: IncomingMessage, response: ServerResponse): boolean {
    if (this.refused.has(request.socket)) {
      response.destroy();
      return false;
    }
    this.requestsSeen++;
    const state = this.sockets.get(request.socket);
    if (state) state.activeRequests++;
    this.openResponses.add(response);
    if (this.draining) response.setHeader('connection', 'close');
    response.once('close', () => {
      this.openResponses.delete(response);
      if (state) {
        state.activeRequests--;
        state.idleSince = Date.now();
      }
    });
    return true;
  }

  /**
   * Stops accepting connections and waits (up to `timeoutMs`) until every HTTP connection
   * is gone: requests in flight and streams run to their end, each answer carries
   * `Connection: close` (requests still arriving on kept-alive sockets are served, then the
   * socket closes), and sockets left idle are closed. WebSockets are left to their server.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    for (const response of this.openResponses) if (!response.headersSent) response.setHeader('connection', 'close');
    // node:http's close() also destroys every idle socket at once, resetting a request a client
    // is sending on one at that instant; net's close() only stops accepting new connections.
    NetServer.prototype.close.call(this.server);
    const deadline = Date.now() + timeoutMs;
    await new Promise<void>((resolve) => {
      const sweep = () => {
        const now = Date.now();
        let open = 0;
        for (const [socket, state] of this.sockets) {
          if (state.upgraded) continue;
          if (state.activeRequests === 0 && now - state.idleSince >= DRAIN_IDLE_GRACE_MS) socket.destroy();
          else open++;
        }
        if (open === 0 || now >= deadline) {
          clearInterval(timer);
          if (open > 0) this.logger.warn({ open }, 'drain timed out with connections still open; closing them');
          resolve();
        }
      };
      const timer = setInterval(sweep, DRAIN_SWEEP_INTERVAL_MS);
      sweep();
    });
  }

  private admit(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = (this.perAddress.get(address) ?? 0) + 1;
    if (this.limits.maxConnections > 0 && this.sockets.size >= this.limits.maxConnections) {
      return this.refuse(socket, 503, `Too many open connections (limit ${this.limits.maxConnections}); retry shortly.`, 'service_unavailable');
    }
    if (this.limits.maxConnectionsPerIp > 0 && fromAddress > this.limits.maxConnectionsPerIp) {
      return this.refuse(socket, 429, `Too many open connections from ${address} (limit ${this.limits.maxConnectionsPerIp}); reuse or close some.`, 'rate_limit_exceeded');
    }
    this.perAddress.set(address, fromAddress);
    this.sockets.set(socket, { address, activeRequests: 0, idleSince: Date.now(), upgraded: false });
    socket.once('close', () => {
      this.sockets.delete(socket);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
  }

  /** Answers before reading the request (the client sees why), then closes the socket. */
  private refuse(socket: Socket, status: number, message: string, type: string): void {
    const body = JSON.stringify({ error: { message, type, param: null, code: String(status) } });
    this.refused.add(socket);
    socket.pause(); // read nothing more from it
    socket.on('error', () => undefined); // the client may already be gone
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\n` +
        `${status === 503 ? 'retry-after: 1\r\n' : ''}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    // Whatever the client sends meanwhile is not read: drop it rather than parse it.
    socket.destroySoon();
  }
}
