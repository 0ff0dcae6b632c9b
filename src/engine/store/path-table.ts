// The paths of the metadata cache, by slot, stored as folder and file name apart: a library's folders repeat
// (hundreds of photos each), so each is one interned string, and the names are packed as UTF-8 in one byte array.
// One JS string per path cost its text plus ~60 bytes of string and array overhead: at 100K paths ~13 MiB of heap,
// ~3 MiB this way, and the garbage collector has 100K fewer objects to trace.

const NONE = 0;

export class PathTable {
  /** Folder id + 1 of each slot's path (0: the slot is empty). */
  private folderOf = new Uint32Array(1024);
  private nameStart = new Uint32Array(1024);
  private nameBytes = new Uint32Array(1024);
  private bytes = new Uint8Array(64 * 1024);
  /** Bytes written to `bytes`, and how many of them belong to a live name: the rest is garbage until a compaction. */
  private end = 0;
  private live = 0;
  /** Folders with their trailing slash ("" for a path without one), so a path is folder + name exactly. */
  private readonly folders: string[] = [];
  private readonly folderIds = new Map<string, number>();
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  set(slot: number, path: string): void {
    this.clear(slot);
    if (slot >= this.folderOf.length) this.growSlots(slot + 1);
    const cut = path.lastIndexOf("/") + 1;
    const name = path.slice(cut);
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const room = name.length * 3;
    if (this.end + room > this.bytes.length) this.makeRoom(room);
    const written = this.encoder.encodeInto(name, this.bytes.subarray(this.end)).written;
    this.folderOf[slot] = this.folderId(path.slice(0, cut)) + 1;
    this.nameStart[slot] = this.end;
    this.nameBytes[slot] = written;
    this.end += written;
    this.live += written;
  }

  get(slot: number): string | null {
    const folder = this.folderOf[slot] ?? NONE;
    return folder === NONE ? null : this.folders[folder - 1]! + this.name(slot);
  }

  clear(slot: number): void {
    if (slot >= this.folderOf.length || this.folderOf[slot] === NONE) return;
    this.live -= this.nameBytes[slot]!;
    this.folderOf[slot] = NONE;
  }

  /**
   * A test with the same answer as get(slot).startsWith(prefix) for every slot: whether a folder decides it is worked
   * out once per folder, not per slot, and a name is decoded only where the prefix reaches into it.
   */
  prefixTest(prefix: string): (slot: number) => boolean {
    // Per folder: 0 no path in it matches, 1 every path does, 2 those whose name starts with the rest of the prefix.
    const verdict = new Uint8Array(this.folders.length);
    this.folders.forEach((folder, i) => {
      verdict[i] = prefix.length <= folder.length ? (folder.startsWith(prefix) ? 1 : 0) : prefix.startsWith(folder) ? 2 : 0;
    });
    return (slot) => {
      const id = this.folderOf[slot] ?? NONE;
      if (id === NONE) return false;
      const v = verdict[id - 1];
      if (v === undefined) return this.get(slot)!.startsWith(prefix); // a folder added since the test was made
      return v === 1 || (v === 2 && this.name(slot).startsWith(prefix.slice(this.folders[id - 1]!.length)));
    };
  }

  /** Folder id + 1 of the slot's path (0: empty): slots with the same key have the same folder. */
  folderKey(slot: number): number {
    return this.folderOf[slot] ?? NONE;
  }

  /** The folder of a key from folderKey, with its trailing slash. */
  folder(key: number): string {
    return this.folders[key - 1]!;
  }

  /** One more than the largest folder key. */
  get folderKeys(): number {
    return this.folders.length + 1;
  }

  private name(slot: number): string {
    const start = this.nameStart[slot]!;
    return this.decoder.decode(this.bytes.subarray(start, start + this.nameBytes[slot]!));
  }

  private folderId(folder: string): number {
    let id = this.folderIds.get(folder);
    if (id === undefined) {
      id = this.folders.push(folder) - 1;
      this.folderIds.set(folder, id);
    }
    return id;
  }

  private growSlots(atLeast: number): void {
    const n = Math.max(atLeast, Math.ceil(this.folderOf.length * 1.5));
    for (const key of ["folderOf", "nameStart", "nameBytes"] as const) {
      const next = new Uint32Array(n);
      next.set(this[key]);
      this[key] = next;
    }
  }

  /** Room for `room` more bytes: names of cleared and renamed slots are dropped first when they are most of it. */
  private makeRoom(room: number): void {
    const compact = this.live < this.end / 2;
    // Uncompacted, the garbage stays: room is needed after all `end` bytes, not just the live ones.
    const size = Math.max((compact ? this.live : this.end) + room, Math.ceil((compact ? this.live : this.bytes.length) * 1.5));
    const next = new Uint8Array(size);
    if (!compact) {
      next.set(this.bytes.subarray(0, this.end));
    } else {
      let at = 0;
      for (let slot = 0; slot < this.folderOf.length; slot++) {
        if (this.folderOf[slot] === NONE) continue;
        const start = this.nameStart[slot]!;
        const length = this.nameBytes[slot]!;
        next.set(this.bytes.subarray(start, start + length), at);
        this.nameStart[slot] = at;
        at += length;
      }
      this.end = at;
    }
    this.bytes = next;
  }
}
