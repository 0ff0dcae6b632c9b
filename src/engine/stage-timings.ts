// Busy time per pipeline stage. Stages overlap (decode runs while the model infers), so the shares of wall time
// can add up to more than 100 %: that overlap is the point of the pipeline, and the table shows it. "open" (the
// store, its vectors checked) and "plan" (the catalog read and compared with the scan) are what a re-run of a large,
// unchanged library costs besides the scan.

export const INDEX_STAGES = ["scan", "open", "plan", "read", "hash", "decode", "preprocess", "infer", "write"] as const;

export interface StageRow {
  stage: string;
  totalMs: number;
  msPerImage: number;
  pctOfWall: number;
}

export class StageTimings {
  private readonly totals = new Map<string, number>();

  constructor(stages: readonly string[] = INDEX_STAGES) {
    for (const s of stages) this.totals.set(s, 0);
  }

  add(stage: string, ms: number): void {
    this.totals.set(stage, (this.totals.get(stage) ?? 0) + ms);
  }

  async time<T>(stage: string, work: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await work();
    } finally {
      this.add(stage, performance.now() - t0);
    }
  }

  rows(images: number, wallMs: number): StageRow[] {
    return [...this.totals].map(([stage, totalMs]) => ({
      stage,
      totalMs: Math.round(totalMs),
      msPerImage: images > 0 ? +(totalMs / images).toFixed(2) : 0,
      pctOfWall: wallMs > 0 ? +((100 * totalMs) / wallMs).toFixed(1) : 0,
    }));
  }
}

export function formatStageTable(rows: StageRow[], wallMs: number): string {
  const lines = [`${"stage".padEnd(11)}${"total ms".padStart(10)}${"ms/img".padStart(9)}${"% wall".padStart(8)}`];
  for (const r of rows) {
    lines.push(
      `${r.stage.padEnd(11)}${String(r.totalMs).padStart(10)}${r.msPerImage.toFixed(2).padStart(9)}${r.pctOfWall.toFixed(1).padStart(8)}`,
    );
  }
  lines.push(`${"wall".padEnd(11)}${String(Math.round(wallMs)).padStart(10)}`);
  return lines.join("\n");
}
