import { describe, expect, it } from 'vitest';
import { decodeLedgerCursor, encodeLedgerCursor } from './ledger-cursor';

describe('ledger cursor', () => {
  it('round-trips what it encodes', () => {
    const at = new Date('2026-11-30T12:34:56.789Z');
    expect(decodeLedgerCursor(encodeLedgerCursor(at, 'req-1|x'))).toEqual({ createdAt: at.toISOString(), requestId: 'req-1|x' });
  });

  it.each([
    ['MXx4', '1|x'],
    [Buffer.from('2026-13-01T00:00:00.000Z|r').toString('base64url'), 'month 13'],
    [Buffer.from('2026-11-30T12:34:56.789Z|').toString('base64url'), 'no request id'],
    [Buffer.from('no bar at all').toString('base64url'), 'no separator'],
    [Buffer.from('2026-11-30|r').toString('base64url'), 'a date without time'],
    ['not base64!', 'not base64url'],
    ['', 'empty'],
  ])('refuses %s (%s) with a 400 naming the parameter', (cursor) => {
    expect(() => decodeLedgerCursor(cursor, 'after')).toThrow(expect.objectContaining({ status: 400, param: 'after', message: expect.stringMatching(/^Invalid value for after/) }));
  });
});
