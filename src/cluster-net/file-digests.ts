// sha256 of model files, computed once per version of a file (path + size + mtime): hashing a 600 MB model on every
// request, or on every worker start, would dominate both. A worker keeps its digests in a small file beside the
// models it fetches, so a restart re-hashes nothing that has not changed.
import { existsSync, readFileSync, statSync, type Stats } from "node:fs";
import { z } from "zod";
import { sha256File } from "../engine/identity.ts";
import { commitFile } from "../engine/store/atomic-file.ts";

interface Digest {
  size: number;
  mtimeMs: number;
  sha256: Promise<string>;
}

const Saved = z.record(z.string(), z.object({ size: z.number(), mtimeMs: z.number(), sha256: z.string() }));

export class FileDigests {
  private readonly known = new Map<string, Digest>();

  /** `savePath`: where to keep the digests across restarts; written only while its directory exists. */
  constructor(private readonly savePath?: string) {
    if (!savePath || !existsSync(savePath)) return;
    try {
      const saved = Saved.parse(JSON.parse(readFileSync(savePath, "utf8")));
      for (const [path, d] of Object.entries(saved)) this.known.set(path, { ...d, sha256: Promise.resolve(d.sha256) });
    } catch {
      // A damaged cache only costs a re-hash.
    }
  }

  /** The file's sha256, hashed only if it is new or changed since last time. Concurrent callers share one hash. */
  async sha256(path: string, stats: Stats = statSync(path)): Promise<string> {
    const known = this.known.get(path);
    if (known && known.size === stats.size && known.mtimeMs === stats.mtimeMs) return known.sha256;
    const digest = { size: stats.size, mtimeMs: stats.mtimeMs, sha256: sha256File(path) };
    this.known.set(path, digest);
    try {
      await digest.sha256;
    } catch (err) {
      this.known.delete(path);
      throw err;
    }
    await this.save();
    return digest.sha256;
  }

  /** Records a digest computed elsewhere (while downloading), for the file as it is now on disk. */
  async remember(path: string, sha256: string): Promise<void> {
    const stats = statSync(path);
    this.known.set(path, { size: stats.size, mtimeMs: stats.mtimeMs, sha256: Promise.resolve(sha256) });
    await this.save();
  }

  private async save(): Promise<void> {
    if (!this.savePath) return;
    const out: z.infer<typeof Saved> = {};
    for (const [path, d] of this.known) {
      const sha256 = await d.sha256.catch(() => null);
      if (sha256) out[path] = { size: d.size, mtimeMs: d.mtimeMs, sha256 };
    }
    try {
      commitFile(this.savePath, `${JSON.stringify(out)}\n`);
    } catch {
      // Its directory does not exist (nothing was fetched there) or is read-only: the digests live in memory only.
    }
  }
}
