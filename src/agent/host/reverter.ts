/**
 * Multi-step host changes register an undo for each step; on failure `revert()` runs them
 * in reverse so a half-made change leaves nothing behind. `done()` forgets them on success.
 */
export class Reverter {
  private undos: (() => Promise<unknown> | unknown)[] = [];

  add(undo: () => Promise<unknown> | unknown): void {
    this.undos.push(undo);
  }

  async revert(): Promise<void> {
    for (const undo of this.undos.reverse()) {
      try {
        await undo();
      } catch {
        // Best effort: keep undoing the rest.
      }
    }
    this.undos = [];
  }

  done(): void {
    this.undos = [];
  }
}
