// The live coordinator screen: polls a status source, keeps the selection and the key bindings, and renders
// CoordinatorView. Everything it does to the job goes through the callbacks it is given.
import { useApp, useInput } from "ink";
import { useEffect, useState } from "react";
import type { JobStatus } from "../cluster-net/protocol.ts";
import { CoordinatorView } from "./coordinator-view.tsx";

export interface CoordinatorAppProps {
  status: () => Promise<JobStatus>;
  events: () => string[];
  pause: (paused: boolean) => Promise<void>;
  drain: (workerId: string) => Promise<void>;
  /** First q: workers finish their batch and stop; second q: leave at once. */
  quit: (stage: 1 | 2) => void;
  refreshMs?: number;
}

export function CoordinatorApp(props: CoordinatorAppProps) {
  const { exit } = useApp();
  const [status, setStatus] = useState<JobStatus | null>(null);
  const [selected, setSelected] = useState(0);
  const [quitting, setQuitting] = useState(false);

  useEffect(() => {
    let live = true;
    const poll = async () => {
      const s = await props.status().catch(() => null);
      if (live && s) setStatus(s);
    };
    void poll();
    const t = setInterval(poll, props.refreshMs ?? 500);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, []);

  useInput((input, key) => {
    if (!status) return;
    if (key.upArrow) setSelected((i: number) => Math.max(0, i - 1));
    if (key.downArrow) setSelected((i: number) => Math.min(status.workers.length - 1, i + 1));
    if (input === "p") void props.pause(!status.paused);
    if (input === "d" && status.workers[selected]) void props.drain(status.workers[selected]!.id);
    if (input === "q") {
      if (quitting) {
        props.quit(2);
        exit();
      } else {
        setQuitting(true);
        props.quit(1);
      }
    }
  });

  if (!status) return null;
  return (
    <CoordinatorView
      state={{
        status,
        selected,
        events: props.events().slice(-5),
        quitNote: quitting
          ? "again: quit now (workers keep their batch and reconnect when you restart)"
          : "quit: workers finish their current batch and stop",
      }}
    />
  );
}
