// Reads one unlabelled sample from a server's Prometheus /metrics page, e.g. process_resident_memory_bytes.

/** The value of `name`, or null when the page cannot be read or does not carry it. */
export async function scrapeMetric(baseUrl: string, name: string, headers: Record<string, string> = {}): Promise<number | null> {
  try {
    const res = await fetch(new URL("/metrics", baseUrl), { headers, signal: AbortSignal.timeout(5_000) });
    if (!res.ok) return null;
    const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `));
    const value = line === undefined ? NaN : Number(line.slice(name.length + 1));
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}
