import type { QueueSlot } from './queue-slots.js';

/** Where the writes stood as a release began: see {@link UnguardedWrites.releaseAnswered}. */
export interface ReleaseStart {
  /** No put was in flight: the release's deletes come after every put. */
  readonly afterEveryPut: boolean;
  readonly putsBefore: number;
}

/**
 * The writes of one attempt (EtcdMutex) that do not check the key's create revision (see
 * QueueSlots): puts-if-absent (the enqueue, the waiting-room entry) and deletes by name (the
 * room exit, the delete of a key whose revision is unknown). Such a write landing late on a
 * reused name would hit another attempt's key, so the name is given back only once our keys
 * are known gone and none of these is in flight or of unknown outcome.
 */
export class UnguardedWrites {
  private putsInFlight = 0;
  private putsSent = 0;
  private deletesInFlight = 0;
  private outcomeUnknown = false;
  /** A release sent after every put was answered has been answered: no key of ours exists. */
  private keysGone = false;

  constructor(
    /** the session's name for our key, given back once no write of ours can land on it */
    private readonly slot: QueueSlot,
  ) {}

  /** Sends a write that does not check our key's create revision, counted until answered. */
  async send<T>(kind: 'put' | 'delete', request: () => Promise<T>): Promise<T> {
    if (kind === 'put') {
      this.putsInFlight++;
      this.putsSent++;
      this.keysGone = false;
    } else this.deletesInFlight++;
    try {
      return await request();
    } catch (err) {
      this.outcomeUnknown = true; // it may still land: the name is never reused
      throw err;
    } finally {
      if (kind === 'put') this.putsInFlight--;
      else this.deletesInFlight--;
      this.freeSlotIfDone(); // the last write to settle gives the name back
    }
  }

  /** Taken before a release sends its deletes. */
  releaseBegins(): ReleaseStart {
    return { afterEveryPut: this.putsInFlight === 0, putsBefore: this.putsSent };
  }

  /** The deletes of a release begun at `start` were answered: no key of ours is left if no put was in flight or sent since. */
  releaseAnswered(start: ReleaseStart): void {
    if (start.afterEveryPut && this.putsSent === start.putsBefore) this.keysGone = true;
    this.freeSlotIfDone();
  }

  /** A try that wrote nothing (the lock was busy): no key of ours exists, the name can serve again. */
  wroteNothing(): void {
    if (this.putsInFlight === 0) this.keysGone = true;
    this.freeSlotIfDone();
  }

  /** Gives the key's name back to the session once our keys are gone and no unguarded write can still land. */
  private freeSlotIfDone(): void {
    if (this.keysGone && this.putsInFlight === 0 && this.deletesInFlight === 0 && !this.outcomeUnknown) this.slot.free();
  }
}
