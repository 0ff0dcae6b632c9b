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

  private async call<S extends z.ZodType>(path: string, init: RequestInit, reply: S): Promise<z.infer<S>> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        ...init,
        headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new MeshUnavailable(`coordinator ${this.baseUrl} unreachable: ${err instanceof Error ? err.message : err}`);
    }
    const text = await res.text();
    if (res.status >= 500) throw new MeshUnavailable(`coordinator ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new MeshUnavailable(`coordinator ${path}: HTTP ${res.status}, not JSON`);
    }
    if (!res.ok) {
      const err = ErrorReply.safeParse(json);
      throw new MeshRefusal(res.status, err.success ? err.data.error : `HTTP ${res.status}`);
    }
    return reply.parse(json);
  }
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
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 5000);
    }
  }
}
