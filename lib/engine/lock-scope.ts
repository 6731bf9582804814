import { AsyncLocalStorage } from 'node:async_hooks';
import type { HeldLock, LockHandle } from './lock.handle.js';

/** What an async context holds: its locks by name, and the innermost one. */
interface Held {
  readonly locks: ReadonlyMap<string, HeldLock>;
  readonly current: LockHandle;
}

/** Which locks the calling async context holds: for current() and reentrancy. */
export class LockScope {
  private readonly storage = new AsyncLocalStorage<Held>();

  /** The innermost lock of the calling context. */
  current(): LockHandle | undefined {
    return this.storage.getStore()?.current;
  }

  /** The calling context's hold on `name`, if any. */
  holding(name: string): HeldLock | undefined {
    return this.storage.getStore()?.locks.get(name);
  }

  /** Runs `fn` synchronously with `lock` (on `held`) as the context's innermost lock. */
  run<T>(lock: LockHandle, held: HeldLock, fn: () => T): T {
    const locks = new Map(this.storage.getStore()?.locks).set(lock.key, held);
    return this.storage.run({ locks, current: lock }, fn);
  }
}
