// `--profile DIR`: a V8-format CPU profile of the run (open in Chrome DevTools or speedscope) plus one JSON line per
// second of system state, so two runs can be compared side by side.
import { Session } from "node:inspector";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";

export interface SystemSample {
  t: number;
  load1: number;
  rssMb: number;
  cpuPct: number;
}

export class RunProfile {
  private readonly session = new Session();
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private readonly started = performance.now();

  private constructor(private readonly dir: string) {}

  static async start(dir: string, intervalMs = 1000): Promise<RunProfile> {
    mkdirSync(dir, { recursive: true });
    const profile = new RunProfile(dir);
    profile.session.connect();
    await profile.post("Profiler.enable");
    await profile.post("Profiler.start");
    profile.timer = setInterval(() => profile.sample(), intervalMs);
    profile.timer.unref?.();
    return profile;
  }

  private post(method: string): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.session.post(method, (err: Error | null, result: unknown) => (err ? reject(err) : resolve(result))),
    );
  }

  sample(): SystemSample {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const s: SystemSample = {
      t: Math.round(now - this.started),
      load1: +loadavg()[0]!.toFixed(2),
      rssMb: +(process.memoryUsage.rss() / 2 ** 20).toFixed(1),
      cpuPct: +(((cpu.user + cpu.system) / 1000 / Math.max(1, now - this.lastAt)) * 100).toFixed(1),
    };
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    appendFileSync(join(this.dir, "system.jsonl"), `${JSON.stringify(s)}\n`);
    return s;
  }

  async stop(): Promise<{ cpuProfile: string; system: string }> {
    clearInterval(this.timer);
    this.sample();
    const result = (await this.post("Profiler.stop")) as { profile: unknown };
    const cpuProfile = join(this.dir, "cpu.cpuprofile");
    writeFileSync(cpuProfile, JSON.stringify(result.profile));
    this.session.disconnect();
    return { cpuProfile, system: join(this.dir, "system.jsonl") };
  }
}
