// The worker's side of the wire: typed POST/GET against the coordinator, replies checked against the schemas.
import type { z } from "zod";
import { ErrorReply } from "./protocol.ts";

/** The coordinator answered, and said no (bad token, wrong protocol, unknown worker ...). Retrying will not help. */
export class MeshRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "MeshRefusal";
  }
}

/** The coordinator could not be reached or failed: worth retrying. */
export class MeshUnavailable extends Error {
  name = "MeshUnavailable";
}

export class MeshClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 10_000,
  ) {}

  post<S extends z.ZodType>(path: string, body: unknown, reply: S): Promise<z.infer<S>> {
    return this.call(path, { method: "POST", body: JSON.stringify(body) }, reply);
  }

  get<S extends z.ZodType>(path: string, reply: S): Promise<z.infer<S>> {
    return this.call(path, { method: "GET" }, reply);
  }

  /**
   * GETs a file: the response once its headers arrive, the body left for the caller to read. No deadline covers
   * the body (a large model must not be cut off at 10 s); the caller aborts `abort` when the transfer stalls.
   */
  async stream(path: string, abort: AbortController): Promise<Response> {
    const timer = setTimeout(() => abort.abort(new Error(`no answer in ${this.timeoutMs / 1000} s`)), this.timeoutMs);
    try {
      const res = await this.send(path, { method: "GET", signal: abort.signal });
      if (res.ok) return res;
      throw refusalOrUnavailable(path, res.status, await res.text());
    } finally {
      clearTimeout(timer);
    }
  }

  private async call<S extends z.ZodType>(path: string, init: RequestInit, reply: S): Promise<z.infer<S>> {
    const res = await this.send(path, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.text();
    if (!res.ok) throw refusalOrUnavailable(path, res.status, text);
    try {
      return reply.parse(JSON.parse(text));
    } catch (err) {
      if (err instanceof SyntaxError) throw new MeshUnavailable(`coordinator ${path}: HTTP ${res.status}, not JSON`);
      throw err;
    }
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(new URL(path, this.baseUrl), {
        ...init,
        headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      });
    } catch (err) {
      throw new MeshUnavailable(`coordinator ${this.baseUrl} unreachable: ${fetchFailure(err, this.timeoutMs)}`);
    }
  }
}

const FETCH_FAILURES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
};

/** Why a fetch failed, in a few words: Bun's messages add advice ("pass `verbose: true` ...") meant for developers. */
export function fetchFailure(err: unknown, timeoutMs: number): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError") return `no answer in ${timeoutMs / 1000} s`;
  const code = (err as Error & { code?: string }).code;
  if (code && FETCH_FAILURES[code]) return FETCH_FAILURES[code];
  return err.message.replace(/\s*(For more information|Is the computer able)[^]*$/, "").replace(/\.$/, "") || code || err.name;
}

/** 5xx (and a proxy's 408/429) is worth retrying; any other answer is a no (an older coordinator 404s newer routes). */
function refusalOrUnavailable(path: string, status: number, text: string): Error {
  if (status >= 500 || status === 408 || status === 429) {
    return new MeshUnavailable(`coordinator ${path}: HTTP ${status} ${text.slice(0, 200)}`);
  }
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // A plain-text refusal, such as Hono's own 404 for a route it does not have.
  }
  const err = ErrorReply.safeParse(json);
  return new MeshRefusal(status, err.success ? err.data.error : `${path}: HTTP ${status}`);
}

/** Retries `work` while the coordinator is unavailable: 0.25 s doubling to `maxDelayMs`, until `signal` aborts. */
export async function withBackoff<T>(
  work: () => Promise<T>,
  opts: { maxDelayMs?: number; giveUpAfterMs?: number; signal?: AbortSignal; onRetry?: (err: Error, delayMs: number) => void } = {},
): Promise<T> {
  let delay = 250;
  const t0 = Date.now();
  for (;;) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof MeshUnavailable) || opts.signal?.aborted || Date.now() - t0 > (opts.giveUpAfterMs ?? Infinity)) throw err;
      opts.onRetry?.(err, delay);
      await sleepUnlessAborted(delay, opts.signal);
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 5000);
    }
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return Bun.sleep(ms);
  return new Promise((done) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal!.removeEventListener("abort", finish);
      done();
    }
    signal.addEventListener("abort", finish, { once: true });
  });
}
