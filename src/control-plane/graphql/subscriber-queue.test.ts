import { describe, expect, it } from 'vitest';
import { EventBus } from '../../ledger/events';
import { FellBehind, SubscriberQueue } from './subscriber-queue';

function listenerCount(bus: EventBus<number>): number {
  return (bus as unknown as { listeners: Set<unknown> }).listeners.size;
}

describe('SubscriberQueue', () => {
  it('delivers accepted events in order, to a waiting reader and from the queue', async () => {
    const bus = new EventBus<number>();
    const queue = new SubscriberQueue<number>((listener) => bus.subscribe(listener), 10, (n) => n % 2 === 0);
    const waiting = queue.next();
    bus.publish(2);
    expect(await waiting).toEqual({ value: 2, done: false });
    for (const n of [3, 4, 5, 6]) bus.publish(n);
    expect(queue.size).toBe(2);
    expect(await queue.next()).toEqual({ value: 4, done: false });
    expect(await queue.next()).toEqual({ value: 6, done: false });
  });

  it('cuts off a reader that falls more than the limit behind: queued events, one marker, the end', async () => {
    const bus = new EventBus<number>();
    const queue = new SubscriberQueue<number>((listener) => bus.subscribe(listener), 3);
    for (let n = 1; n <= 10; n++) bus.publish(n);
    expect(queue.size).toBe(3);
    expect(listenerCount(bus)).toBe(0);
    const values = [];
    for await (const value of queue) values.push(value);
    expect(values.slice(0, 3)).toEqual([1, 2, 3]);
    expect(values[3]).toBeInstanceOf(FellBehind);
    expect((values[3] as FellBehind).limit).toBe(3);
    expect(values).toHaveLength(4);
  });

  it('unsubscribes and ends a pending read when the subscriber leaves', async () => {
    const bus = new EventBus<number>();
    const queue = new SubscriberQueue<number>((listener) => bus.subscribe(listener));
    expect(listenerCount(bus)).toBe(1);
    const pending = queue.next();
    await queue.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(listenerCount(bus)).toBe(0);
    bus.publish(1);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
  });
});
