/** @module A minimal OpenAI-compatible upstream for the benchmark: fixed reply, JSON or SSE; also the webhook receiver. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const REPLY = 'The quick brown fox jumps over the lazy dog.';
const JSON_BODY = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-test',
  choices: [{ index: 0, message: { role: 'assistant', content: REPLY }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 },
});

function sseBody(withUsage: boolean): string {
  const chunk = (delta: object, finish: string | null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-test', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  let body = chunk({ role: 'assistant', content: '' }, null);
  for (const word of REPLY.split(' ')) body += chunk({ content: word + ' ' }, null);
  body += chunk({}, 'stop');
  if (withUsage) body += `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-test', choices: [], usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 } })}\n\n`;
  return body + 'data: [DONE]\n\n';
}

export async function startBenchUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      // Tollgate's spend_tracked webhooks land here too: taken and dropped.
      if (request.url?.startsWith('/webhook')) return void response.writeHead(204).end();
      const text = Buffer.concat(chunks).toString();
      if (text.includes('"stream":true')) {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.end(sseBody(text.includes('"include_usage":true')));
      } else {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(JSON_BODY) });
        response.end(JSON_BODY);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
