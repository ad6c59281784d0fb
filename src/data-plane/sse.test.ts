/** The SSE parser: events split anywhere across chunks come out whole, in order, at once. */
import { describe, expect, it } from 'vitest';
import { SseParser } from './sse';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('SseParser', () => {
  it('emits each event as soon as its blank line arrives, whatever the chunking', () => {
    const stream = 'event: message_start\ndata: {"a":1}\n\n: keep-alive\n\ndata: line one\ndata: line two\r\n\r\ndata: [DONE]\n\n';
    for (const size of [1, 3, 7, stream.length]) {
      const parser = new SseParser();
      const events = [];
      for (let i = 0; i < stream.length; i += size) events.push(...parser.push(bytes(stream.slice(i, i + size))));
      events.push(...parser.end());
      expect(events).toEqual([{ event: 'message_start', data: '{"a":1}' }, { event: undefined, data: 'line one\nline two' }, { event: undefined, data: '[DONE]' }]);
    }
  });

  it('keeps a UTF-8 character split across chunks intact', () => {
    const parser = new SseParser();
    const encoded = bytes('data: héllo €\n\n');
    expect(parser.push(encoded.slice(0, 9))).toEqual([]);
    expect(parser.push(encoded.slice(9))).toEqual([{ event: undefined, data: 'héllo €' }]);
  });

  it('flushes a last event without its blank line at the end', () => {
    const parser = new SseParser();
    parser.push(bytes('data: tail'));
    expect(parser.end()).toEqual([{ event: undefined, data: 'tail' }]);
  });
});
