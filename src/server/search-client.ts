// The search API as a client sees it: what `imgd query --server URL` sends to a running `imgd serve` (or a
// coordinator started with --serve), so one index can be queried from any host without its files or models.
import { basename } from "node:path";
import type { z } from "zod";
import { MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, SearchResponse } from "./schemas.ts";

export interface RemoteQuery {
  text?: string;
  image?: { name: string; bytes: Uint8Array };
  k: number;
  offset?: number;
  after?: string;
  before?: string;
  pathPrefix?: string;
  has?: string[];
  textIn?: string;
  person?: string[];
}

export type RemoteSearchResult = z.infer<typeof SearchResponse>;

export class RemoteSearchError extends Error {
  override name = "RemoteSearchError";

  constructor(
    message: string,
    /** No answer at all (refused, reset, timed out), as opposed to an answer that refuses. */
    readonly unreachable = false,
  ) {
    super(message);
  }
}

/** A 429 is retried after its Retry-After, a few times and never for long: a person is waiting. */
const RETRIES = 3;
const MAX_RETRY_WAIT_MS = 5_000;

export class SearchClient {
  private readonly base: URL;

  constructor(
    server: string,
    private readonly token?: string,
  ) {
    if (!URL.canParse(server) || !/^https?:$/.test(new URL(server).protocol)) {
      throw new RemoteSearchError(`--server must be an http:// or https:// URL, not ${JSON.stringify(server)}`);
    }
    this.base = new URL(server.endsWith("/") ? server : `${server}/`);
  }

  /**
   * The hits a search here would give. A server answers at most MAX_K hits a request, so a larger k is asked for
   * page by page; past what its offset limit lets it list, and for a text longer than it takes, this says so
   * instead of passing on a 400 about fields the user never wrote.
   */
  async search(query: RemoteQuery): Promise<RemoteSearchResult> {
    if (query.text && query.text.length > MAX_QUERY_CHARS) {
      throw new RemoteSearchError(`the query text is ${query.text.length} characters; imgd serve takes at most ${MAX_QUERY_CHARS}`);
    }
    const start = query.offset ?? 0;
    const lastOffset = start + MAX_K * (Math.ceil(query.k / MAX_K) - 1);
    if (lastOffset > MAX_OFFSET) {
      throw new RemoteSearchError(`imgd serve pages through results only up to offset ${MAX_OFFSET}, ${MAX_K} at a time: -k ${query.k} --offset ${start} goes past it`);
    }
    let asked = Math.min(query.k, MAX_K);
    const first = await this.searchPage({ ...query, k: asked });
    const hits = [...first.hits];
    const timings = { ...first.timings };
    for (let got = first.hits.length; got === asked && hits.length < query.k; ) {
      asked = Math.min(query.k - hits.length, MAX_K);
      const page = await this.searchPage({ ...query, k: asked, offset: start + hits.length });
      hits.push(...page.hits);
      for (const [stage, ms] of Object.entries(page.timings)) timings[stage] = (timings[stage] ?? 0) + ms;
      got = page.hits.length;
    }
    return { hits, timings };
  }

  private async searchPage(query: RemoteQuery): Promise<RemoteSearchResult> {
    const filters = filterFields(query);
    let res: Response;
    if (query.image) {
      const form = new FormData();
      form.append("image", new Blob([query.image.bytes as Uint8Array<ArrayBuffer>]), basename(query.image.name));
      for (const [name, value] of filters) form.append(name, value);
      res = await this.request("api/search", { method: "POST", body: form });
    } else {
      const params = new URLSearchParams(filters);
      if (query.text) params.set("q", query.text);
      res = await this.request(`api/search?${params}`);
    }
    const parsed = SearchResponse.safeParse(await res.json().catch(() => null));
    if (!parsed.success) throw new RemoteSearchError(`${this.base.origin} did not answer as an imgd search API does`);
    return parsed.data;
  }

  /** The original file of an indexed image, as the server holds it. */
  async file(id: number): Promise<Response> {
    return this.request(`api/images/${id}/file`);
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(path, this.base);
    const headers = new Headers(init.headers);
    if (this.token) headers.set("authorization", `Bearer ${this.token}`);
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, { ...init, headers, redirect: "error" });
      } catch (err) {
        throw new RemoteSearchError(`cannot reach ${this.base.origin}: ${(err as Error).message}`, true);
      }
      if (res.ok) return res;
      const wait = Number(res.headers.get("retry-after") ?? NaN) * 1000;
      if (res.status === 429 && attempt < RETRIES && wait <= MAX_RETRY_WAIT_MS) {
        await res.body?.cancel();
        await Bun.sleep(Number.isFinite(wait) ? wait : 500);
        continue;
      }
      throw new RemoteSearchError(await failure(res, this.base.origin, Boolean(this.token)));
    }
  }
}

function filterFields(q: RemoteQuery): [string, string][] {
  const fields: [string, string][] = [["k", String(q.k)]];
  if (q.offset) fields.push(["offset", String(q.offset)]);
  if (q.after) fields.push(["after", q.after]);
  if (q.before) fields.push(["before", q.before]);
  if (q.pathPrefix) fields.push(["path_prefix", q.pathPrefix]);
  if (q.has?.length) fields.push(["has", q.has.join(",")]);
  if (q.textIn) fields.push(["text_in", q.textIn]);
  for (const person of q.person ?? []) fields.push(["person", person]);
  return fields;
}

/** The server's own reason where it gave one (its 4xx bodies are `{ error }`). */
async function failure(res: Response, origin: string, sentToken: boolean): Promise<string> {
  const body = (await res.json().catch(() => null)) as { error?: unknown } | null;
  const reason = typeof body?.error === "string" ? body.error : res.statusText || "no reason given";
  if (res.status === 401) {
    return sentToken ? `${origin} refused the token (${reason})` : `${origin} wants a token: give --token, --token-file or IMGD_TOKEN`;
  }
  return `${origin} answered ${res.status}: ${reason}`;
}
