import { Subject, type Observable } from 'rxjs';
import type { LockChange } from '../interfaces/lock-backend.interface.js';
import type { LockEvent } from '../interfaces/lock-event.interface.js';

/** The events$ stream of one LockService: its own locks' events, and with `watch` the others'. */
export class LockEvents {
  readonly events$: Observable<LockEvent>;
  private readonly subject = new Subject<LockEvent>();

  constructor(
    private readonly ownerId: string,
    /** ids of this service's sessions: the watch reports only the others' locks */
    private readonly ownSessions: ReadonlySet<string>,
    /** told of each of this service's locks that ends without a release (the service's log) */
    private readonly onLoss?: (event: LockEvent) => void,
  ) {
    this.events$ = this.subject.asObservable();
  }

  /** An event of a lock of this service. */
  emit(event: Omit<LockEvent, 'owner' | 'origin' | 'at'>): void {
    const loss = event.type === 'lost' || event.type === 'expired';
    if (!this.subject.observed && !(loss && this.onLoss)) return; // nobody listens: do not build an event per acquire and release
    const full: LockEvent = { ...event, owner: this.ownerId, origin: 'local', at: new Date() };
    if (loss) this.onLoss?.(full);
    this.subject.next(full);
  }

  /** The watch's changes to other processes' locks, as remote events. */
  remote(changes: LockChange[]): void {
    for (const { session, ...change } of changes) {
      if (this.ownSessions.has(session)) continue; // ours: reported as local events
      this.subject.next({ ...change, origin: 'remote', at: new Date() });
    }
  }

  complete(): void {
    this.subject.complete();
  }
}
