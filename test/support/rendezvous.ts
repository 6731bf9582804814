import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Lets `parties` handlers meet inside their critical sections: proof that they ran in parallel
 * (serialized handlers could never all arrive). Gives up after 10 s with a clear error.
 */
export class Rendezvous {
  private arrived = 0;
  private open!: () => void;
  private readonly opened = new Promise<void>(resolve => (this.open = resolve));
  constructor(private readonly parties: number) {}

  async arrive(): Promise<void> {
    if (++this.arrived === this.parties) this.open();
    const stop = new AbortController();
    const bound = sleep(10_000, undefined, { signal: stop.signal }).then(() => {
      throw new Error(`only ${this.arrived} of ${this.parties} handlers were ever inside at once: they were serialized`);
    }, () => {}); // aborted: met in time
    try {
      await Promise.race([this.opened, bound]);
    } finally {
      stop.abort();
    }
  }
}
