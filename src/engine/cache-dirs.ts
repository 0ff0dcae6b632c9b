// Where imgd keeps what it can always make again (unpacked native libraries, mappable model copies): the user's
// cache dir, then a per-user temp dir for hosts whose home is read-only or missing.
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export function cacheDirs(name: string): string[] {
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return [join(xdg, "imgd", name), join(tmpdir(), `imgd-${name}-${process.getuid?.() ?? 0}`)];
}
