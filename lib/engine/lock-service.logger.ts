import { LockLostError, type LockLossReason } from '../common/lock.errors.js';
import { LOG_CLOSED, LOG_CLOSED_UNCONFIRMED, LOG_LOCK_LOST, LOG_SESSION_EXPIRED, LOG_SESSION_REPLACED, LOG_STARTED } from '../common/lock.messages.js';
import type { LockEvent } from '../interfaces/lock-event.interface.js';
import type { LockLogger } from '../interfaces/lock-logger.interface.js';

/** A session as the log names it. */
interface SessionInfo {
  readonly id: string;
  readonly ttl: number;
}

/**
 * What a LockService tells its `logger` option: a line when it starts and when it closes, a
 * warning for each of its locks that ends without a release, an error when its session
 * expires. Nothing per acquisition: a busy app would drown what matters. A logger that throws
 * is ignored: logging never breaks a lock.
 */
export class LockServiceLogger {
  private started = false;

  /**
   * Warns of a local lock lost: session expired, key deleted, force-unlocked, past maxHold or
   * its own ttl. Undefined without a logger, so that nothing is built per lock for it. Told
   * directly, not through events$: a subscriber there would make every acquire and release build an event.
   */
  readonly lockLost: ((event: LockEvent) => void) | undefined;

  constructor(
    private readonly logger: LockLogger | undefined,
    private readonly where: string,
    private readonly prefix: string,
  ) {
    this.lockLost = logger
      ? event => {
          if (event.reason) this.write('warn', LOG_LOCK_LOST(lossMessage(event.key, event.reason), event.reason, event.token, event.heldMs));
        }
      : undefined;
  }

  sessionOpened(session: SessionInfo): void {
    this.write('log', this.started ? LOG_SESSION_REPLACED(session.id, session.ttl) : LOG_STARTED(this.where, this.prefix, session.ttl, session.id));
    this.started = true;
  }

  sessionExpired(session: SessionInfo, locksLost: number): void {
    this.write('error', LOG_SESSION_EXPIRED(this.where, session.id, session.ttl, locksLost));
  }

  /** `revoked`: the store confirmed the end of the session (undefined: no session was open). */
  closed(released: number, session: SessionInfo | undefined, revoked: boolean): void {
    if (session && !revoked) this.write('warn', LOG_CLOSED_UNCONFIRMED(this.where, session.id, session.ttl));
    else this.write('log', LOG_CLOSED(released, session?.id));
  }

  private write(level: keyof LockLogger, message: string): void {
    try {
      this.logger?.[level](message);
    } catch {
      // a broken logger must not break a lock
    }
  }
}

function lossMessage(key: string, reason: LockLossReason): string {
  return new LockLostError(key, reason).message;
}
