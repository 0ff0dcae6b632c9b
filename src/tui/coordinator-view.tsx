// The coordinator's terminal view. It renders a plain state object (the status API's JobStatus plus what the
// operator selected and was last told); keys are wired by CoordinatorApp, so this renders in tests as a string.
import { Box, Text } from "ink";
import { formatDuration } from "../engine/progress.ts";
import { waitingForWorkers, type JobStatus, type WorkerRow } from "../cluster-net/protocol.ts";

export interface CoordinatorViewState {
  status: JobStatus;
  selected: number;
  /** The last few events, newest last. */
  events: string[];
  /** What quitting will do now; shown in the key bar. */
  quitNote: string;
}

const COLUMNS = [
  ["worker", 18],
  ["host", 12],
  ["state", 9],
  ["img/s", 7],
  ["avg", 7],
  ["done", 7],
  ["flight", 6],
  ["err", 5],
  ["rss", 8],
  ["beat", 6],
] as const;

function cell(value: string, width: number, right = false): string {
  const v = value.length > width ? `${value.slice(0, width - 1)}…` : value;
  return right ? v.padStart(width) : v.padEnd(width);
}

export function workerCells(w: WorkerRow): string[] {
  return [
    w.id,
    w.host,
    w.state,
    w.rateNow.toFixed(1),
    w.rateAverage.toFixed(1),
    String(w.done),
    String(w.inFlight),
    String(w.errors),
    `${Math.round(w.rssBytes / 2 ** 20)}M`,
    `${(w.heartbeatAgeMs / 1000).toFixed(1)}s`,
  ];
}

const STATE_COLOUR: Record<WorkerRow["state"], string> = {
  idle: "yellow",
  working: "green",
  draining: "cyan",
  lost: "red",
  gone: "gray",
};

export function CoordinatorView({ state }: { state: CoordinatorViewState }) {
  const s = state.status;
  const pct = s.total > 0 ? ((s.done / s.total) * 100).toFixed(1) : "100.0";
  return (
    <Box flexDirection="column">
      <Text bold>
        imgd coordinator · job {s.jobId.slice(0, 8)} · {s.phase}
        {s.paused ? " · PAUSED" : ""}
      </Text>
      <Text>
        {COLUMNS.map(([name, width], i) => cell(name, width, i >= 3)).join(" ")}
      </Text>
      {waitingForWorkers(s) ? <Text dimColor>waiting for workers (imgd worker --coordinator URL --token T)</Text> : null}
      {s.workers.map((w, i) => (
        <Text key={w.id} inverse={i === state.selected} color={STATE_COLOUR[w.state]}>
          {workerCells(w)
            .map((v, j) => cell(v, COLUMNS[j]![1], j >= 3))
            .join(" ")}
        </Text>
      ))}
      <Text>
        total {s.done}/{s.total} {pct}% · {s.rate.toFixed(1)} img/s · elapsed {formatDuration(s.elapsedMs)} · eta{" "}
        {formatDuration(s.etaMs)}
        {s.failed > 0 ? ` · ${s.failed} failed` : ""} · batches {s.batches.committed} done, {s.batches.leased} leased,{" "}
        {s.batches.queued} queued
      </Text>
      {state.events.map((e, i) => (
        <Text key={i} dimColor>
          {e}
        </Text>
      ))}
      <Text dimColor>
        ↑/↓ select · d drain selected · p {s.paused ? "resume" : "pause"} dispatch · q {state.quitNote}
      </Text>
    </Box>
  );
}
