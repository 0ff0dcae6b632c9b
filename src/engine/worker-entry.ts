// Worker scripts are extra entry points of build.ts. In a checkout they load from their source file; inside the
// compiled binary they sit in Bun's embedded filesystem at their path from the repo root.
export function workerEntry(repoPath: string, sourceUrl: URL): string {
  return Bun.main.startsWith("/$bunfs/") ? `/$bunfs/root/${repoPath}` : sourceUrl.href;
}
