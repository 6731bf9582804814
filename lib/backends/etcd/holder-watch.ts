import type { IKeyValue } from 'etcd3';
import { decodeOwner } from '../../common/owner-record.js';
import type { KeyWatch } from './key-watch.js';

/** Why a holder watch stopped; a constant, as `abort()` without a reason builds a DOMException. */
const STOPPED = new Error('holder watch stopped');

/** What the holder watch asks of the attempt holding the lock (EtcdMutex), which keeps our key's state and sends every request. */
export interface HeldKey {
  /** etcd revision at which we last saw our key. */
  seenAt(): bigint;
  /** We waited for the lock and have not yet written when we got it into our key. */
  acquiredUnrecorded(): boolean;
  /** Writes when we got the lock into our key; false if the key is gone. */
  recordAcquired(signal: AbortSignal): Promise<boolean>;
  /** A watch FROM NOW for our key's deletion, with the key as it was. */
  watchDeletion(signal: AbortSignal): KeyWatch;
  /** One read: is our key still there with its revision? */
  ownKeyRemains(signal: AbortSignal): Promise<boolean>;
}

/**
 * Calls `onGone` once if our key is deleted while we hold the lock (by anyone: an admin,
 * etcdctl, lease expiry). Returns a function that stops watching.
 */
export function watchHeldKey(held: HeldKey, onGone: (forced: boolean) => void, delayMs: number): () => void {
  const stop = new AbortController();
  // stopped while reading: our own release may have deleted the key; the release reports a loss itself
  const gone = async (): Promise<boolean> => !stop.signal.aborted && !(await held.ownKeyRemains(stop.signal)) && !stop.signal.aborted;
  const watch = async (): Promise<void> => {
    // a holder that waited records when it got the lock, which also checks that its key is still there
    if (held.acquiredUnrecorded() && !(await held.recordAcquired(stop.signal)) && !stop.signal.aborted) return onGone(false);
    while (!stop.signal.aborted) {
      const watch = held.watchDeletion(stop.signal);
      let previous: IKeyValue | undefined;
      try {
        const attachedAt = await watch.attached;
        // etcd moved on since we last saw our key (during the delay, say): it may be gone already
        if ((attachedAt === undefined || attachedAt > held.seenAt()) && (await gone())) return onGone(false);
        if (attachedAt !== undefined) previous = await watch.gone;
      } finally {
        watch.stop();
      }
      // a delete event, or trouble with the watch: read instead of trusting a resumed stream
      if (await gone()) return onGone(previous !== undefined && decodeOwner(previous.value).forcedBy !== undefined);
    }
  };
  // most locks end before the delay: they never watch
  const timer = setTimeout(() => void watch().catch(() => undefined /* stopped */), delayMs).unref();
  return () => {
    clearTimeout(timer);
    stop.abort(STOPPED);
  };
}
