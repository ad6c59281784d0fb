/**
 * @module The unloaded probe: one request at a time on a kept-alive connection, timing the
 * whole JSON answer and, for a stream, the arrival of its first SSE event. The difference to
 * the upstream measured the same way is the latency a proxy adds.
 */
import { Agent, request } from 'node:http';

export interface ProbeResult {
  /** Median milliseconds to the whole body (JSON) or to the first `data:` event (SSE). */
  medianMs: number;
  p90Ms: number;
}

function once(agent: Agent, url: URL, body: string, headers: Record<string, string>, stream: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
    const outgoing = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (response) => {
      let firstEvent: number | null = null;
      let text = '';
      response.on('data', (chunk: Buffer) => {
        if (stream && firstEvent === null) {
          text += chunk.toString();
          if (text.includes('data:')) firstEvent = elapsed();
        }
      });
      response.on('end', () => {
        if (response.statusCode !== 200) reject(new Error(`probe got HTTP ${response.statusCode}`));
        else resolve(stream ? (firstEvent ?? elapsed()) : elapsed());
      });
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

/** `count` sequential requests after a few unmeasured ones; the connection is kept alive. */
export async function probe(baseUrl: string, makeBody: (index: number) => string, headers: Record<string, string>, stream: boolean, count = 300): Promise<ProbeResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(`${baseUrl}/v1/chat/completions`);
  try {
    for (let index = 0; index < 20; index++) await once(agent, url, makeBody(index), headers, stream);
    const times: number[] = [];
    for (let index = 0; index < count; index++) times.push(await once(agent, url, makeBody(index), headers, stream));
    times.sort((a, b) => a - b);
    return { medianMs: percentile(times, 0.5), p90Ms: percentile(times, 0.9) };
  } finally {
    agent.destroy();
  }
}
