import type { IKeyValue } from 'etcd3';
import { decodeOwner } from '../../common/owner-record.js';
import type { StoppableWatch, WatchListener } from './watch-stream.js';

/** Why a holder watch's read stopped; a constant, as `abort()` without a reason builds a DOMException. */
const STOPPED = new Error('holder watch stopped');

/** What the holder watch asks of the attempt holding the lock (EtcdMutex), which keeps our key's state and sends every request. */
export interface HeldKey {
  /** etcd revision at which we last saw our key. */
  readonly seenAt: bigint;
  /** We waited for the lock and have not yet written when we got it into our key. */
  readonly acquiredUnrecorded: boolean;
  /** Writes when we got the lock into our key; false if the key is gone. */
  recordAcquired(signal: AbortSignal): Promise<boolean>;
  /** A watch FROM NOW for our key's deletion, with the key as it was. */
  watchDeletion(listener: WatchListener): StoppableWatch;
  /** One read: is our key still there with its revision? */
  ownKeyRemains(signal: AbortSignal): Promise<boolean>;
}

/** setTimeout's callback: a function of the module, not a closure per lock. */
function begin(watch: HolderWatch): void {
  watch.begin();
}

/**
 * Calls `onGone` once if our key is deleted while we hold the lock (by anyone: an admin,
 * etcdctl, lease expiry), from `delayMs` after the lock was taken (most locks end before).
 *
 * A lock can be held for hours and a process can hold thousands: while nothing happens, a held
 * lock keeps only this object and its watch on the connection's stream (no promise, timer or
 * AbortController). Every wake-up is confirmed by a read: a watch is never trusted alone.
 */
export class HolderWatch implements WatchListener, StoppableWatch {
  private timer: NodeJS.Timeout | undefined;
  private watch: StoppableWatch | undefined;
  /** Aborts the reads under way when the watch stops; exists only while one is. */
  private reading: AbortController | undefined;
  private reads = 0;
  private done = false;

  constructor(
    private readonly held: HeldKey,
    private readonly onGone: (forced: boolean) => void,
    delayMs: number,
  ) {
    this.timer = setTimeout(begin, delayMs, this).unref();
  }

  /** The delay has passed: a holder that waited records when it got the lock (which also checks its key), then watches. */
  begin(): void {
    this.timer = undefined;
    if (this.held.acquiredUnrecorded) void this.read(signal => this.held.recordAcquired(signal), undefined, true);
    else this.watchAgain();
  }

  stop(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.watch?.stop();
    this.reading?.abort(STOPPED);
  }

  watchAttached(revision: bigint): void {
    // etcd moved on since we last saw our key (during the delay, say): it may be gone already; the watch stays
    if (revision > this.held.seenAt) void this.read(signal => this.held.ownKeyRemains(signal), undefined, false);
  }

  watchWoken(previous: IKeyValue | undefined): void {
    this.watch = undefined;
    // a delete event, or trouble with the watch: read instead of trusting a resumed stream
    void this.read(signal => this.held.ownKeyRemains(signal), previous, true);
  }

  private watchAgain(): void {
    if (!this.done) this.watch = this.held.watchDeletion(this);
  }

  /** Reads whether our key remains; gone: reported once (forced if an operator's forceUnlock marked it), else watches again if `rewatch`. */
  private async read(remains: (signal: AbortSignal) => Promise<boolean>, previous: IKeyValue | undefined, rewatch: boolean): Promise<void> {
    const reading = (this.reading ??= new AbortController());
    this.reads++;
    try {
      const there = await remains(reading.signal);
      // stopped while reading: our own release may have deleted the key; the release reports a loss itself
      if (this.done) return;
      if (!there) {
        this.stop();
        this.onGone(previous !== undefined && decodeOwner(previous.value).forcedBy !== undefined);
      } else if (rewatch) this.watchAgain();
    } catch {
      // stopped, or a refusal no retry fixes: the release still checks the key
    } finally {
      if (--this.reads === 0 && this.reading === reading) this.reading = undefined;
    }
  }
}
