/** Events in arrival order, with a wait for the first one (already seen or coming) that matches. */
export class EventList<T> {
  readonly items: T[] = [];
  private readonly listeners = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves with the first item at or after index `from` that matches; rejects after timeoutMs with `describe()`. */
  waitFor(match: (item: T) => boolean, timeoutMs: number, describe: () => string, from = 0): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.items.slice(from).find(match);
        if (!found) return;
        this.listeners.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(describe()));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }
}
