// Who owns a directory on the shared storage, for messages about a process (another uid, or root that NFS
// root_squash turns into nobody) that may not read or write it.
import { statSync } from "node:fs";

export function ownerText(path: string): string {
  try {
    const s = statSync(path);
    return `${path} is owned by uid ${s.uid}, mode ${(s.mode & 0o7777).toString(8).padStart(4, "0")}`;
  } catch {
    return `${path} cannot be examined either`;
  }
}
