/**
 * @module One full garbage collection each time the gateway falls quiet.
 *
 * V8 collects the old generation when it grows, not when the process goes idle: a gateway
 * that has started (or served a burst) and then waits keeps what that work left behind
 * resident until some later allocation triggers a collection. Its memory reducer may collect
 * after a while, or may not: the same gateway read 123 MB idle in one bench sitting and 158 MB
 * in the next, and a full collection taken by hand at that point gave back ~30 MB (91 → 62 MB
 * of heap, RSS 279 → 250 MB embedded). So once no request has arrived for a whole quiet
 * interval after some did (or after start-up), the gateway collects once, and not again until
 * requests have come and gone. At that moment nothing is being served, so the pause (tens of
 * ms for a heap of ~60 MB) costs no request anything; one arriving during it waits once.
 * After it, the C heap's free pages (what the collection freed of buffers, and what the
 * work left in glibc's arenas) go back to the system too (malloc-tuning.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type FullCollection = () => void;

/**
 * V8's `gc()` without `--expose-gc` on the command line: the flag is set only while one new
 * context is created, which receives `gc`, and cleared again, so that no other context (a
 * worker started later, a vm sandbox) gets a `gc` global. The function stays valid.
 */
export function fullCollection(): FullCollection {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as FullCollection;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

export interface IdleCollectionOptions {
  /** How long no request may have arrived before collecting. */
  quietMs: number;
  /** A count that grows with every request (the server's requests so far). */
  activity: () => number;
  /** Requests being answered now (a long stream is not quiet, though nothing new arrives). */
  inFlight: () => number;
  collect?: FullCollection;
  /** After each collection: hands the C heap's free pages back (`malloc_trim`). */
  releaseFreePages?: () => void;
  /** Called after each collection with how long it took. */
  onCollected?: (durationMs: number) => void;
}

export class IdleCollector {
  private timer: NodeJS.Timeout | null = null;
  /** The activity count at the last check; null before the first. */
  private seen: number | null = null;
  /** The activity count at the last collection: nothing has happened since while it holds. */
  private collectedAt: number | null = null;
  private readonly collect: FullCollection;

  constructor(private readonly options: IdleCollectionOptions) {
    this.collect = options.collect ?? (options.quietMs > 0 ? fullCollection() : () => undefined);
  }

  start(): void {
    if (this.timer || this.options.quietMs <= 0) return;
    this.timer = setInterval(() => this.check(), this.options.quietMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * One tick of the quiet interval: collects when nothing arrived since the previous tick,
   * nothing is being answered, and something (start-up counts) happened since the last
   * collection. Public for the tests.
   */
  check(): boolean {
    const now = this.options.activity();
    const quiet = this.seen === now && this.options.inFlight() === 0;
    this.seen = now;
    if (!quiet || this.collectedAt === now) return false;
    this.collectedAt = now;
    const started = performance.now();
    this.collect();
    this.options.releaseFreePages?.();
    this.options.onCollected?.(performance.now() - started);
    return true;
  }
}
