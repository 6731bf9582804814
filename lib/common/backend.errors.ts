import { describeKind, type LockKind } from './lock-kind.js';

// What a backend tells the engine by throwing (see LockBackend): the engine turns each into the user's LockError.

/** Thrown by a QueueEntry when its entry vanished while it waited (deleted by someone). */
export class EntryGoneError extends Error {}

/** Thrown by a QueueEntry when the queue holds a kind that cannot queue with its own. */
export class KindConflictError extends Error {
  constructor(readonly found: LockKind) {
    super(`the queue holds ${describeKind(found)}`);
  }
}
