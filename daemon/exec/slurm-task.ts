/**
 * One Slurm array task (`minipach slurm-task`, started by the script exec/slurm.ts submits): runs its batch
 * of datums with the native executor and reports how each ended. It talks to nothing but git:
 * - its batch is a file of a commit the dispatcher put on `refs/minipach/slurm/<tag>/batches` of the
 *   dataset's home (the origin, or the dataset itself on a shared file system);
 * - results are handed in as a worker hands them in (run commits on `refs/minipach/runs/<key>`, annexed
 *   content copied to the origin), or, on a shared file system, written into the dataset where they are;
 * - its report (every datum's outcome so far, its log clipped) is a commit on
 *   `refs/minipach/slurm/<tag>/report/<task>`, rewritten as datums end: the dispatcher reads it within
 *   seconds, and Slurm's own state is only the fallback for datums a task never reported.
 * The branch is never written from here: the dispatcher's committer does that, as for workers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Annex } from '../adapters/annex.js';
import { installedFile } from '../adapters/install-dir.js';
import { shellQuote } from '../core/shell.js';
import type { SlurmSettings } from './executors.js';
import { openDataset, type Dataset } from '../adapters/dataset.js';
import { GitRepo, type LsTreeEntry } from '../adapters/git.js';
import type { Datum } from '../core/datums.js';
import { SpecError } from '../core/errors.js';
import type { DataladRunRecord } from '../core/record.js';
import type { ResourceUsage } from '../core/result-index.js';
import { loadSpec } from '../core/spec.js';
import { runRef } from '../results/branch.js';
import { HandIn, type ResultToHandIn } from './hand-in.js';
import { storageOf } from '../adapters/storage.js';
import { annexKeysOf, runNativeBatch } from './native.js';
import type { ComputeJob, ComputeOutcome } from './outcome.js';

/** The refs of one array job in the dataset's home. */
export const slurmRefPrefix = (tag: string) => `refs/minipach/slurm/${tag}/`;
export const batchesRef = (tag: string) => `${slurmRefPrefix(tag)}batches`;
export const reportRef = (tag: string, task: number) => `${slurmRefPrefix(tag)}report/${task}`;
export const REPORT_FILE = 'report.json';

/** A datum as a task gets it: what a worker's queue job carries. */
export interface TaskJob {
  readonly key: string;
  readonly pipeline: string;
  readonly datumName: string;
  readonly outputDir: string;
  readonly specFile: string;
  readonly specSource: string;
  readonly datum: Datum;
}

/** One task's batch: `<task>.json` in the batches commit. */
export interface TaskBatch {
  readonly baseCommit: string;
  /** The dataset's S3 special remote: inputs come from it and results go to it (not on a shared file system). */
  readonly storage?: string;
  readonly jobs: readonly TaskJob[];
}

export type ReportEntry =
  | {
      readonly key: string;
      readonly ok: true;
      readonly commit: string;
      readonly outputs: readonly LsTreeEntry[];
      readonly record: DataladRunRecord;
      readonly resources: ResourceUsage;
      readonly log: string;
      readonly annexKeys: readonly string[];
    }
  | {
      readonly key: string;
      readonly ok: false;
      readonly reason: string;
      readonly exit?: number;
      readonly stderrTail: string;
      readonly resources: ResourceUsage;
      readonly log: string;
      readonly timedOut?: boolean;
      readonly permanent?: boolean;
    };

export interface TaskReport {
  /** `<job>_<task>`, as Slurm names it. */
  readonly task: string;
  readonly host: string;
  readonly entries: ReportEntry[];
  /** Set when the task has run every datum of its batch. */
  done: boolean;
  /** Why the task could not run its batch (no clone, no batch file): its unreported datums failed with it. */
  error?: string;
  /** When it was written (the task's clock): every write is a new commit, heartbeats included. */
  beat?: number;
}

export interface SlurmTaskOptions {
  /** The dataset's home: the origin's URL, or (shared) the dataset's path. */
  readonly home: string;
  readonly tag: string;
  readonly index: number;
  /** The dataset is on a file system this node shares: work in it, no clone, no copies. */
  readonly shared: boolean;
  /** `<job>_<task>`, for the record. */
  readonly label: string;
}

/** A report's log is clipped: reports are rewritten as datums end, and the whole log stays on the node. */
const REPORT_LOG_LIMIT = 16 * 1024;
const clip = (s: string) => (s.length > REPORT_LOG_LIMIT ? `[... ${s.length - REPORT_LOG_LIMIT} bytes cut]\n` + s.slice(-REPORT_LOG_LIMIT) : s);

/** Reports are written at most this often while datums end; the last one when the batch is done. */
const REPORT_EVERY_MS = 500;

/** How often a running task writes its report even when nothing changed (MINIPACH_SLURM_HEARTBEAT_MS). */
export const heartbeatMs = () => Number(process.env['MINIPACH_SLURM_HEARTBEAT_MS']) || 30_000;

export async function runSlurmTask(opts: SlurmTaskOptions): Promise<number> {
  const report: TaskReport = { task: opts.label, host: os.hostname(), entries: [], done: false };
  let scratch: string | undefined;
  let reporter: Reporter | undefined;
  let batch: TaskBatch | undefined;
  try {
    let ds: Dataset;
    if (opts.shared) {
      ds = await openDataset(opts.home);
      reporter = new Reporter(ds.repo, undefined, opts, report);
    } else {
      // Reports (and heartbeats) start before the clone, which can take long: from a repository of their own.
      scratch = await mkdtemp(path.join(os.tmpdir(), `minipach-task-${opts.label}-`));
      reporter = new Reporter(await GitRepo.init(path.join(scratch, 'report')), opts.home, opts, report);
      const clone = path.join(scratch, 'clone');
      await GitRepo.clone(opts.home, clone);
      await new Annex(clone).init(`minipach slurm task ${opts.label}`, { hardlink: true });
      ds = await openDataset(clone);
      const f = await ds.repo.fetch('origin', [`+${batchesRef(opts.tag)}:${batchesRef(opts.tag)}`]);
      if (!f.ok) throw new Error(`could not fetch this task's batch from ${opts.home}: ${f.message}`);
    }
    const text = await ds.repo.fileAt(batchesRef(opts.tag), `${opts.index}.json`);
    if (!text) throw new Error(`no batch ${opts.index} in ${batchesRef(opts.tag)}`);
    batch = JSON.parse(text.toString('utf8')) as TaskBatch;
    const jobs: ComputeJob[] = [];
    for (const j of batch.jobs) {
      const spec = loadSpec(j.specFile, j.specSource);
      if (spec instanceof SpecError) report.entries.push({ key: j.key, ok: false, reason: spec.message, stderrTail: '', resources: { wall: 0 }, log: spec.message, permanent: true });
      else jobs.push({ spec, datum: j.datum, key: j.key, outputDir: j.outputDir, baseCommit: batch.baseCommit });
    }
    if (batch.storage && !opts.shared) {
      ds = { ...ds, storage: batch.storage };
      await storageOf(ds);
    }
    const handIn = opts.shared ? new LocalHandIn(ds) : new HandIn(ds);
    await runNativeBatch(ds, batch.baseCommit, jobs, async (job, outcome) => {
      report.entries.push(entryOf(job, outcome));
      reporter!.changed();
    }, { handIn: (job, result) => handIn.submit(job.key, result) });
    report.done = true;
    await reporter.flush();
    return 0;
  } catch (e) {
    report.error = (e as Error).message;
    const reported = new Set(report.entries.map((x) => x.key));
    for (const j of batch?.jobs ?? []) {
      if (!reported.has(j.key)) report.entries.push({ key: j.key, ok: false, reason: `the Slurm task ${opts.label} could not run it: ${report.error}`, stderrTail: '', resources: { wall: 0 }, log: report.error });
    }
    process.stderr.write(`minipach slurm-task ${opts.label}: ${report.error}\n`);
    // Without a reporter (no clone, no dataset) the dispatcher goes by Slurm's state of this task.
    await reporter?.flush().catch((x: Error) => process.stderr.write(`minipach slurm-task ${opts.label}: could not report: ${x.message}\n`));
    return 1;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** The script of an array job: every task starts minipach on its batch (`settings.minipach` says how, on a node). */
export function taskScript(home: string, tag: string, settings: Pick<SlurmSettings, 'minipach' | 'sharedFs' | 'heartbeatMs'>): string {
  const minipach = settings.minipach ?? [process.execPath, installedFile('bin/minipach.js')];
  const argv = [...minipach, 'slurm-task', '--home', home, '--tag', tag, ...(settings.sharedFs ? ['--shared'] : [])];
  return `#!/bin/sh\n# minipach: one batch of datums per array task\nexport MINIPACH_SLURM_HEARTBEAT_MS=${settings.heartbeatMs ?? heartbeatMs()}\nexec ${argv.map(shellQuote).join(' ')}\n`;
}

/**
 * The reports of some arrays that changed since `seen` (ref -> commit read), fetched first from the home
 * (`from`; none on a shared file system, where they are in the dataset already): ref -> commit and report.
 */
export async function changedReports(ds: Dataset, from: string | undefined, tags: readonly string[], seen: ReadonlyMap<string, string>, warn: (m: string) => void): Promise<Map<string, { commit: string; report: TaskReport }>> {
  if (from) {
    const f = await ds.repo.fetch(from, tags.map((t) => `+${slurmRefPrefix(t)}report/*:${slurmRefPrefix(t)}report/*`), { noTags: true });
    if (!f.ok) warn(`could not fetch reports from ${from}: ${f.message}`);
  }
  const out = new Map<string, { commit: string; report: TaskReport }>();
  for (const { ref, commit } of await ds.repo.refs(tags.map((t) => `${slurmRefPrefix(t)}report/`))) {
    if (seen.get(ref) === commit) continue;
    const text = await ds.repo.fileAt(commit, REPORT_FILE);
    if (text) out.set(ref, { commit, report: JSON.parse(text.toString('utf8')) as TaskReport });
  }
  return out;
}

function entryOf(job: ComputeJob, o: ComputeOutcome): ReportEntry {
  if (!o.ok) return { key: job.key, ok: false, reason: o.reason, exit: o.exit, stderrTail: o.stderrTail, resources: o.resources, log: clip(o.log), timedOut: o.timedOut, permanent: o.permanent };
  const outputs = o.outputs.map(({ content: _bytes, ...entry }) => entry);
  return { key: job.key, ok: true, commit: o.commit, outputs, record: o.record, resources: o.resources, log: clip(o.log), annexKeys: annexKeysOf(o.outputs) };
}

/** Writes the task's report as a commit on its ref (and pushes it to the home), at most every REPORT_EVERY_MS. */
class Reporter {
  private timer?: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  private readonly beat: NodeJS.Timeout;

  /** `pushTo`: the home the report goes to; none: `repo` is the dataset itself (a shared file system). */
  constructor(private readonly repo: GitRepo, private readonly pushTo: string | undefined, private readonly opts: SlurmTaskOptions, private readonly report: TaskReport) {
    // A heartbeat: the report is written now and again every HEARTBEAT_MS, even with nothing new, so the
    // dispatcher can tell a task that runs from one that Slurm still shows RUNNING with nothing behind it.
    this.changed();
    this.beat = setInterval(() => this.changed(), heartbeatMs());
    this.beat.unref();
  }

  changed(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.writing = this.writing.then(() => this.write()).catch(() => undefined);
    }, REPORT_EVERY_MS);
  }

  async flush(): Promise<void> {
    clearInterval(this.beat);
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    await this.write();
  }

  private async write(): Promise<void> {
    this.report.beat = Date.now();
    const content = Buffer.from(JSON.stringify(this.report));
    const [commit] = await this.repo.writeCommits(undefined, [{ changes: [{ path: REPORT_FILE, mode: '100644', content }], message: `minipach: report of Slurm task ${this.report.task}` }]);
    const ref = reportRef(this.opts.tag, this.opts.index);
    if (!this.pushTo) return this.repo.setRef(ref, commit!);
    const r = await this.repo.push(this.pushTo, [`+${commit}:${ref}`]);
    if (r.status !== 'ok') throw new Error(`could not push the report to ${this.pushTo}: ${r.message}`);
  }
}

/**
 * Hand-in on a shared file system: the scratch checkout's annex is the dataset's own, so the content is
 * there already; only the run commit is written and put on its run ref.
 */
class LocalHandIn {
  constructor(private readonly ds: Dataset) {}

  async submit(datumKey: string, result: ResultToHandIn): Promise<string> {
    const commit = 'commit' in result.run ? result.run.commit : (await this.ds.repo.writeCommits(undefined, [result.run.write]))[0]!;
    await this.ds.repo.setRef(runRef(datumKey), commit);
    return commit;
  }
}
