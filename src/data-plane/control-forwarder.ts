/**
 * @module In `tollgate proxy` processes, every route that is not inference (REST, /graphql
 * and its WebSocket, /ui) is forwarded to the control plane with http-proxy, so one base URL
 * serves everything while the control plane stays off the request path. Pitfalls handled
 * (STACK.md §P5): an `error` listener (else an unreachable control plane crashes the
 * process), and the forwarded request is dropped when its client leaves.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { GatewayError } from '../shared/errors';
import type { Logger } from '../observability/logger';
import { sendError } from './http-io';

export class ControlPlaneForwarder {
  private readonly proxy: httpProxy;

  constructor(
    private readonly target: string,
    private readonly logger: Logger,
  ) {
    this.proxy = httpProxy.createProxyServer({ target, xfwd: true, ws: true, proxyTimeout: 60_000 });
    this.proxy.on('proxyReq', (proxyRequest, _request, response) => {
      response.on('close', () => {
        if (!response.writableFinished) proxyRequest.destroy();
      });
    });
    this.proxy.on('error', (error, _request, responseOrSocket) => {
      this.logger.warn({ err: error.message, target }, 'control plane unreachable');
      if ('writeHead' in responseOrSocket) {
        sendError(responseOrSocket as ServerResponse, new GatewayError('upstream_unreachable', `The control plane at ${target} cannot be reached: ${error.message}`));
      } else {
        (responseOrSocket as Duplex).destroy();
      }
    });
  }

  web(request: IncomingMessage, response: ServerResponse): void {
    this.proxy.web(request, response);
  }

  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.proxy.ws(request, socket, head);
  }

  close(): void {
    this.proxy.close();
  }
}
