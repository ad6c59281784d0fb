import { describe, expect, it } from 'vitest';
import { atEndOfTurn } from './end-of-turn';

describe('atEndOfTurn', () => {
  it('runs the durable stage before the network stage, whatever the order they were asked in, once per turn', async () => {
    const ran: string[] = [];
    atEndOfTurn('network', () => ran.push('redis write'));
    atEndOfTurn('durable', () => ran.push('journal write'));
    atEndOfTurn('network', () => ran.push('another socket'));
    expect(ran).toEqual([]); // nothing before the turn ends
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(['journal write', 'redis write', 'another socket']);
  });

  it('keeps running the other tasks when one throws', async () => {
    const ran: string[] = [];
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    atEndOfTurn('durable', () => {
      throw new Error('disk full');
    });
    atEndOfTurn('network', () => ran.push('still sent'));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    expect(ran).toEqual(['still sent']);
    expect(warnings.join()).toMatch(/disk full/);
  });
});
