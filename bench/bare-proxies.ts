/**
 * @module Baselines: the thinnest possible forwarders (no auth, no governance, no metering):
 * a `node:http` pipe (the floor: what any Node proxy costs at least), one on undici (what
 * Tollgate's data plane uses) and one on http-proxy (the design card's library), so the
 * benchmark shows what governance costs on top of forwarding itself.
 */
import { Agent as HttpAgent, createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request as undiciRequest } from 'undici';
import httpProxy from 'http-proxy';

export async function startBareUndiciProxy(upstream: string): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    try {
      const upstreamResponse = await undiciRequest(upstream + request.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks), dispatcher: agent });
      response.writeHead(upstreamResponse.statusCode, { 'content-type': String(upstreamResponse.headers['content-type'] ?? 'application/json') });
      for await (const chunk of upstreamResponse.body) response.write(chunk);
      response.end();
    } catch {
      response.writeHead(502).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, close: () => agent.close() };
}

export async function startBareHttpProxy(upstream: string): Promise<{ url: string; server: Server }> {
  const proxy = httpProxy.createProxyServer({ target: upstream, agent: new HttpAgent({ keepAlive: true, maxSockets: 256 }) });
  proxy.on('error', (_error, _request, response) => {
    // Without this listener http-proxy crashes the process on upstream errors (STACK.md §P5).
    if ('writeHead' in response && !response.headersSent) response.writeHead(502).end();
  });
  const server = createServer((request, response) => proxy.web(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** The floor: each request piped to the upstream on a keep-alive agent, the response piped back. */
export async function startBareNodeHttpProxy(upstream: string): Promise<{ url: string; server: Server }> {
  const target = new URL(upstream);
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const server = createServer((request, response) => {
    const outgoing = httpRequest(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers, agent },
      (upstreamResponse) => {
        response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
        upstreamResponse.pipe(response);
      },
    );
    outgoing.on('error', () => {
      if (!response.headersSent) response.writeHead(502);
      response.end();
    });
    request.pipe(outgoing);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
