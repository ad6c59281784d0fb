/**
 * Slow and greedy clients, over raw TCP sockets: partial headers (slowloris), a trickled
 * body, a kept-alive socket left idle and a socket that never sends a byte are all closed by
 * the gateway after their timeout; connections over the per-address and global caps get a
 * one-line 429 / 503 answer and are closed, while other clients keep being served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { api, startTestGateway, testConfigYaml } from './support/gateway';

const HEADERS_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 2_000;
const KEEP_ALIVE_TIMEOUT_MS = 1_000;
const PER_IP = 4;
const GLOBAL = 7;
/** Far above every timeout: a socket still open by then was never going to be closed. */
const GIVE_UP_MS = 15_000;

let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let port: number;
const opened: Socket[] = [];

beforeAll(async () => {
  gateway = await startTestGateway({
    yaml: testConfigYaml({
      extra: `tollgate:
  headers_timeout_ms: ${HEADERS_TIMEOUT_MS}
  request_timeout_ms: ${REQUEST_TIMEOUT_MS}
  keep_alive_timeout_ms: ${KEEP_ALIVE_TIMEOUT_MS}
  max_connections_per_ip: ${PER_IP}
  max_connections: ${GLOBAL}
`,
    }),
  });
  port = gateway.port;
});

afterAll(async () => {
  for (const socket of opened) socket.destroy();
  await gateway?.stop();
});

interface RawClient {
  socket: Socket;
  received: () => string;
  /** Resolves with the ms from now until the server closed the socket, or 'open' after GIVE_UP_MS. */
  closedWithin: () => Promise<number | 'open'>;
}

/** A raw TCP client from the given loopback address (all of 127/8 reaches the gateway on Linux). */
async function rawClient(localAddress = '127.0.0.1'): Promise<RawClient> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  opened.push(socket);
  let received = '';
  socket.on('data', (chunk) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    received: () => received,
    closedWithin: async () => {
      const started = Date.now();
      const outcome = await Promise.race([ended.then(() => 'closed' as const), new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), GIVE_UP_MS))]);
      return outcome === 'open' ? 'open' : Date.now() - started;
    },
  };
}

/** Writes `text` a piece at a time, every `everyMs`, until the socket closes or the text ends. */
function trickle(socket: Socket, text: string, everyMs: number): void {
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || at >= text.length) return clearInterval(timer);
    socket.write(text[at++]!);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

const CHAT = JSON.stringify({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hi' }] });

describe('slow clients', () => {
  it('closes a socket that sends its headers a byte at a time (slowloris)', async () => {
    const client = await rawClient();
    trickle(client.socket, `POST /chat/completions HTTP/1.1\r\nHost: x\r\n${'X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(50)}\r\n`, 100);
    expect(await client.closedWithin()).not.toBe('open');
    expect(client.received()).toMatch(/^HTTP\/1\.1 408|^$/);
  });

  it('closes a socket that never sends a byte', async () => {
    const client = await rawClient();
    expect(await client.closedWithin()).not.toBe('open');
  });

  it('closes a socket that trickles its body, answering 408', async () => {
    const client = await rawClient();
    client.socket.write(`POST /chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-1234\r\nContent-Type: application/json\r\nContent-Length: ${CHAT.length}\r\n\r\n`);
    trickle(client.socket, CHAT, 150);
    expect(await client.closedWithin()).not.toBe('open');
    expect(client.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes a kept-alive socket left idle after its answer', async () => {
    const client = await rawClient();
    client.socket.write(`GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n`);
    await expect.poll(() => client.received()).toMatch(/I'm alive/);
    expect(client.received()).toMatch(/keep-alive/i);
    expect(await client.closedWithin()).not.toBe('open');
  });

  it('caps connections per address and in all, answering 429 / 503, and serves others meanwhile', async () => {
    const held: RawClient[] = [];
    for (let i = 0; i < PER_IP; i++) held.push(await rawClient('127.0.0.2'));
    const overAddress = await rawClient('127.0.0.2');
    expect(await overAddress.closedWithin()).not.toBe('open');
    expect(overAddress.received()).toMatch(/^HTTP\/1\.1 429 [\s\S]*Too many open connections from [\d.:a-f]*127\.0\.0\.2 \(limit 4\)/);

    // Another address still gets in, up to the global cap.
    const other = await rawClient('127.0.0.3');
    other.socket.write(`GET /health/liveliness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(await other.closedWithin()).not.toBe('open');
    expect(other.received()).toMatch(/^HTTP\/1\.1 200/);
    for (let i = held.length; i < GLOBAL; i++) held.push(await rawClient('127.0.0.3'));
    const overAll = await rawClient('127.0.0.4');
    expect(await overAll.closedWithin()).not.toBe('open');
    expect(overAll.received()).toMatch(/^HTTP\/1\.1 503 [\s\S]*Too many open connections \(limit 7\)/);

    // Sockets that go away free their place.
    for (const client of held) client.socket.destroy();
    await expect.poll(async () => (await api(gateway.url, 'GET', '/health/liveliness').catch(() => ({ status: 0 }))).status, { timeout: 5_000 }).toBe(200);
  });
});
