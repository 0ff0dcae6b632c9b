// A set of image ids as one byte per id up to the largest: a filter that 900K of 1M images pass is 1 MB to build
// and test against, where a Set of them was ~40 MB and a few hundred ms per search request.

export class IdSet {
  private flags = new Uint8Array(1024);
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(id: number): void {
    if (id >= this.flags.length) {
      const next = new Uint8Array(Math.max(id + 1, this.flags.length * 2));
      next.set(this.flags);
      this.flags = next;
    }
    if (this.flags[id] === 0) this.count++;
    this.flags[id] = 1;
  }

  has(id: number): boolean {
    return this.flags[id] === 1;
  }

  /** The ids in ascending order. */
  ids(): number[] {
    const out: number[] = [];
    for (let id = 0; id < this.flags.length && out.length < this.count; id++) if (this.flags[id] === 1) out.push(id);
    return out;
  }
}
