/** A gate a test closes to hold a handler at a known point, then opens; open until closed. */
export class Gate {
  private opened = Promise.resolve();
  private openNow: () => void = () => {};

  close(): void {
    this.opened = new Promise<void>(resolve => (this.openNow = resolve));
  }

  open(): void {
    this.openNow();
  }

  /** Resolves once the gate is open. */
  passed(): Promise<void> {
    return this.opened;
  }
}
