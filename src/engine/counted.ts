/** "1 file", "2 files" ("1 batch", "2 batches" with `plural`): a count and its noun, for the lines a run prints. */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
