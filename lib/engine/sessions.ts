import type { BackendConnection, BackendSession } from '../interfaces/lock-backend.interface.js';
import type { LockServiceLogger } from './lock-service.logger.js';

/** The service's live session: opened on first use, replaced after it expires. */
export class Sessions {
  /** ids of every session this service opened: the watch reports only the others' locks. */
  readonly ids = new Set<string>();
  /** A session was opened once: the backend was reachable with these options, so a failure to open another is an outage. */
  connected = false;
  private session: Promise<BackendSession> | undefined;
  /** The session `session` resolved to, once it has. */
  private opened: BackendSession | undefined;

  constructor(
    private readonly backend: BackendConnection,
    private readonly log: LockServiceLogger,
    /** called once when a session expires, with it */
    private readonly onExpired: (session: BackendSession) => void,
  ) {}

  /** The live session; opens one if there is none (its failure typed). */
  async current(): Promise<BackendSession> {
    for (;;) {
      const pending = (this.session ??= this.open());
      const session = await pending;
      if (session.isValid) return session;
      if (this.session === pending) this.session = undefined;
    }
  }

  /** The live session if one is open now, without waiting: most acquires need nothing more. */
  live(): BackendSession | undefined {
    return this.opened?.isValid ? this.opened : undefined;
  }

  /** The last session opened or opening, if it opened. */
  last(): Promise<BackendSession | undefined> {
    return this.session?.catch(() => undefined) ?? Promise.resolve(undefined);
  }

  private open(): Promise<BackendSession> {
    const opening = this.backend.openSession(this.onExpired).then(
      session => {
        this.connected = true;
        if (this.session === opening) this.opened = session;
        this.ids.add(session.id);
        this.log.sessionOpened(session);
        return session;
      },
      err => {
        if (this.session === opening) this.session = undefined; // the next acquire tries again
        throw this.backend.toLockError(err);
      },
    );
    return opening;
  }
}
