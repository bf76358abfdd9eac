/**
 * Slurm's command-line clients: `sbatch` (an array job, its script on stdin), one `squeue` for every job of
 * minipach's (no `sacct`: accounting is often off), and `scancel`. Clients find the cluster as usual
 * (SLURM_CONF, or the site's /etc/slurm).
 */
import os from 'node:os';
import { runUnchecked } from './process.js';

/** Every minipach job is named with this prefix, so one squeue finds them all. */
export const JOB_NAME_PREFIX = 'minipach-';

export interface SlurmClients {
  /** The sbatch command (a site's wrapper, or a test's). @defaultValue "sbatch" */
  readonly sbatch?: string;
  readonly squeue?: string;
  readonly scancel?: string;
}

/** An sbatch that did not submit: its words, and whether trying again may help. */
export class SubmitError extends Error {
  override name = 'SubmitError';
  constructor(message: string, readonly transient: boolean) {
    super(message);
  }
}

/** One array task as squeue shows it. */
export interface TaskState {
  readonly job: string;
  readonly task: number;
  readonly state: string;
  readonly reason: string;
  /** The job's name: minipach's prefix, then `<dataset>-<pipeline>`. */
  readonly name: string;
}

export class Slurm {
  constructor(private readonly clients: SlurmClients = {}) {}

  /** Submits an array job of tasks 0..n-1 running `script`; returns its job id. */
  async submitArray(script: string, n: number, opts: { name: string; maxRunning?: number; output: string; options: readonly string[] }): Promise<string> {
    const array = `0-${n - 1}${opts.maxRunning ? `%${opts.maxRunning}` : ''}`;
    const argv = [this.clients.sbatch ?? 'sbatch', '--parsable', `--array=${array}`, `--job-name=${JOB_NAME_PREFIX}${opts.name}`, `--output=${opts.output}`, '--no-requeue', ...opts.options];
    const r = await runUnchecked(argv, { input: script, timeoutMs: 60_000 }).catch((e: Error) => ({ exitCode: undefined, stdout: '', stderr: e.message, timedOut: false }));
    const id = /^(\d+)/.exec(r.stdout.trim())?.[1];
    if (r.exitCode === 0 && id) return id;
    const words = (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`).split('\n').slice(-2).join(' ');
    // Options Slurm refuses will be refused again; anything else (the controller busy or away, a socket
    // timeout, a site limit reached) may pass later.
    const refused = /invalid|unrecognized option|not recognized|requested node configuration is not available|invalid partition|invalid account|invalid qos/i.test(words);
    throw new SubmitError(`sbatch: ${words}`, !refused);
  }

  /** Every array task of minipach's jobs Slurm still knows (one query); pending ranges are listed task by task. */
  async tasks(): Promise<TaskState[]> {
    const r = await runUnchecked([this.clients.squeue ?? 'squeue', '-h', '--states=all', `--user=${os.userInfo().username}`, '-o', '%i|%T|%r|%j'], { timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw new Error(`squeue: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseSqueue(r.stdout);
  }

  async cancel(jobs: readonly string[]): Promise<void> {
    if (!jobs.length) return;
    await runUnchecked([this.clients.scancel ?? 'scancel', ...jobs], { timeoutMs: 60_000 });
  }
}

/** `squeue -o '%i|%T|%r|%j'` of minipach's jobs: `12_3` for a task, `12_[4-9%2]` or `12_[1,3]` for pending ones. */
export function parseSqueue(text: string): TaskState[] {
  const out: TaskState[] = [];
  for (const line of text.split('\n')) {
    const [id, state, reason, name] = line.trim().split('|');
    if (!id || !state || !name?.startsWith(JOB_NAME_PREFIX)) continue;
    const m = /^(\d+)_(?:(\d+)|\[([^\]]*)\])$/.exec(id);
    if (!m) continue;
    const tasks = m[2] !== undefined ? [Number(m[2])] : expandRanges(m[3]!.replace(/%\d+$/, ''));
    for (const task of tasks) out.push({ job: m[1]!, task, state, reason: reason ?? '', name });
  }
  return out;
}

function expandRanges(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return out;
}
