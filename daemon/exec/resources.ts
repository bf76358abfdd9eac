/**
 * Resource accounting for one datum: CPU time (user + system) and peak resident memory of the transform's
 * whole process tree, read from Linux's /proc while it runs.
 *
 * Why sampling, and why only part of the tree: the executor runs `datalad run`, which spends 0.5-1 s of
 * CPU of its own (Python start-up, git, git-annex) around the user's command. Charging that to every datum
 * would make a datum that sleeps look busy, and measuring inside the recorded command would change the
 * record `datalad rerun` replays. So the sampler finds the command's own shell (datalad starts it as
 * `/bin/sh -c <cmd>`, a direct child of datalad) and sums only that subtree. Each sample counts every
 * process once: a live process by its own times plus those of the children it has already reaped
 * (`cutime`/`cstime`), so CPU of short-lived children is not lost. What the command spends in its last
 * sampling interval is missed (at most SAMPLE_MS of CPU per core).
 *
 * On systems without /proc the figures are absent; wall time is always recorded.
 */
import { readdir, readFile } from 'node:fs/promises';
import { getconf } from '../adapters/process.js';

const SAMPLE_MS = 100;

let ticksPerSecond: number | undefined;
let pageKiB: number | undefined;

interface ProcSample {
  readonly pid: number;
  /** Own plus reaped children's CPU, in clock ticks. */
  readonly ticks: number;
  readonly rssKiB: number;
  readonly hwmKiB: number;
}

/** A process's children, whichever of its threads started them (each thread lists its own). */
async function children(pid: number): Promise<number[]> {
  try {
    const tasks = await readdir(`/proc/${pid}/task`);
    const lists = await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')));
    return lists.flatMap((text) => text.split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

async function argv(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  } catch {
    return [];
  }
}

async function sample(pid: number): Promise<ProcSample | undefined> {
  try {
    const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
    // Fields after the command name, which is in parentheses and may contain anything.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    const rssKiB = Number(f[21]) * (pageKiB ??= getconf('PAGESIZE', 4096) / 1024);
    const hwmKiB = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { pid, ticks, rssKiB, hwmKiB };
  } catch {
    return undefined; // gone between listing and reading
  }
}

async function subtree(root: number): Promise<number[]> {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(await children(out[i]!)));
  return out;
}

export interface CommandUsage {
  /** Seconds the command's shell was seen alive. */
  readonly wall: number;
  /** User + system CPU seconds of the command's process tree. */
  readonly cpu: number;
  /** Peak resident set size of the command's process tree, KiB. */
  readonly maxRssKiB: number;
}

/** Samples the user command's process tree below a `datalad run` process until stopped. */
export class CommandSampler {
  private timer?: NodeJS.Timeout;
  private busy = false;
  private commandPid?: number;
  private firstSeen?: number;
  private lastSeen?: number;
  private cpuTicks = 0;
  private peakRssKiB = 0;

  /**
   * `parentPid`: the process that starts the command's shell (`datalad run`), or, with `isCommand`, the
   * command's own shell (the native executor starts it directly).
   */
  constructor(private readonly dataladPid: number, isCommand = false) {
    if (isCommand) this.commandPid = dataladPid;
  }

  start(): this {
    if (process.platform !== 'linux') return this;
    ticksPerSecond ??= getconf('CLK_TCK', 100);
    this.timer = setInterval(() => void this.tick(), SAMPLE_MS);
    this.timer.unref();
    return this;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      if (this.commandPid === undefined) {
        for (const c of await children(this.dataladPid)) {
          const a = await argv(c);
          if (a[0] === '/bin/sh' && a[1] === '-c') this.commandPid = c;
        }
        if (this.commandPid === undefined) return;
      }
      const samples = (await Promise.all((await subtree(this.commandPid)).map(sample))).filter((s): s is ProcSample => s !== undefined);
      // The shell gone (its pid can only be listed while it is datalad's child): the command has ended.
      const ended = !samples.some((s) => s.pid === this.commandPid) || (this.commandPid !== this.dataladPid && !(await children(this.dataladPid)).includes(this.commandPid));
      if (ended) return;
      const now = Date.now();
      this.firstSeen ??= now;
      this.lastSeen = now;
      this.cpuTicks = Math.max(this.cpuTicks, samples.reduce((n, s) => n + s.ticks, 0));
      this.peakRssKiB = Math.max(this.peakRssKiB, samples.reduce((n, s) => n + s.rssKiB, 0), ...samples.map((s) => s.hwmKiB));
    } finally {
      this.busy = false;
    }
  }

  /** Stops sampling; undefined when the command was never seen (no /proc, or it ended within one interval). */
  stop(): CommandUsage | undefined {
    if (this.timer) clearInterval(this.timer);
    if (this.firstSeen === undefined || this.lastSeen === undefined) return undefined;
    return {
      wall: round((this.lastSeen - this.firstSeen + SAMPLE_MS) / 1000),
      cpu: round(this.cpuTicks / (ticksPerSecond ?? 100)),
      maxRssKiB: this.peakRssKiB,
    };
  }
}

export const round = (x: number) => Math.round(x * 1000) / 1000;
