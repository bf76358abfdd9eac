/**
 * The Slurm executor's dispatcher: batches of datums become the tasks of Slurm array jobs, one `sbatch` per
 * array (not per datum), and their outcomes come back as each task reports them (exec/slurm-task.ts).
 *
 * - Batches handed in within a moment of each other, of one pipeline (one set of sbatch options), go in
 *   one array of at most `maxArray` tasks, at most `maxRunning` running at once (the array's `%` limit),
 *   and never more than `maxQueued` of minipach's tasks queued or running (sites cap jobs per user).
 * - An sbatch that fails for a reason that may pass (the controller busy or away) is tried again with
 *   backoff, for as long as it takes: it never fails a run. One whose options Slurm refuses fails its datums.
 * - Tasks report through git (their report refs), read every `pollMs`. One `squeue` for all of minipach's
 *   jobs, every second and backing off to ten while nothing changes, is the fallback: a task that ended
 *   without reporting a datum settles it by Slurm's state (core/slurm.ts): a node failure or preemption
 *   runs it again without counting a try; TIMEOUT, OUT_OF_MEMORY, FAILED count one.
 * - `cancel()` (the daemon stopping, `minipach cancel`, a schedule interrupted) scancels every array.
 */
import { randomBytes } from 'node:crypto';
import type { Dataset } from '../adapters/dataset.js';
import { endedTask, hasEnded, sbatchOptions } from '../core/slurm.js';
import { Slurm, SubmitError, type TaskState } from '../adapters/slurm.js';
import { runRef } from '../results/branch.js';
import type { ResultToHandIn } from './hand-in.js';
import { failure, type ComputeJob, type ComputeOutcome } from './outcome.js';
import type { SlurmSettings } from './executors.js';
import { batchesRef, changedReports, heartbeatMs, reportRef, taskScript, type ReportEntry, type TaskBatch, type TaskReport } from './slurm-task.js';

/** What a batch's caller is told, as runNativeBatch tells it. */
export interface SlurmBatchHooks {
  /** On a shared file system, for a worker that must hand the result on to its origin itself. */
  readonly handIn?: (job: ComputeJob, result: ResultToHandIn) => Promise<string>;
  /** The Slurm task a datum went to (`<job>_<task>`), as it is submitted. */
  readonly onSubmitted?: (job: ComputeJob, task: string) => void;
}

/** How many times a datum runs again after node failures before it counts as failed. */
const MAX_RESTARTS = 3;

/** How long batches handed in together wait for each other before their array is submitted. */
const GATHER_MS = 200;

interface Batch {
  readonly ds: Dataset;
  readonly home: string;
  readonly baseCommit: string;
  /** `<dataset>-<pipeline>`: the array's job name, after minipach's prefix. */
  readonly name: string;
  readonly options: readonly string[];
  readonly settled: (job: ComputeJob, outcome: ComputeOutcome) => Promise<void>;
  readonly hooks: SlurmBatchHooks;
  /** Datums not settled yet, and the task each is with now. */
  readonly open: Map<string, { job: ComputeJob; task?: Task; restarts: number }>;
  done(): void;
}

interface Task {
  readonly array: ArrayJob;
  readonly index: number;
  readonly batch: Batch;
  readonly keys: readonly string[];
  /** Polls since Slurm showed it ended (its report is read once more before its state settles anything). */
  endedPolls: number;
  /** Polls in a row it was not in squeue at all. */
  missing: number;
  /** When (here) a new report of it was last read, or it was first seen running: its last sign of life. */
  lastSign?: number;
}

interface ArrayJob {
  readonly tag: string;
  readonly ds: Dataset;
  readonly home: string;
  jobId?: string;
  readonly tasks: Task[];
  /** Report commit already read, by task. */
  readonly read: Map<number, string>;
}

export class SlurmArrays {
  private readonly slurm: Slurm;
  private waiting: { batch: Batch; jobs: ComputeJob[] }[] = [];
  private readonly arrays = new Set<ArrayJob>();
  private gather?: NodeJS.Timeout;
  private loop?: Promise<void>;
  private stopped = false;
  private squeueEvery = 1000;
  private nextSqueue = 0;
  private lastStates = '';

  constructor(readonly settings: SlurmSettings, private readonly log: (m: string) => void = () => undefined) {
    this.slurm = new Slurm(settings.clients);
  }

  /**
   * Runs `jobs` (one base commit, one pipeline) on Slurm as one array task, or several if they outgrow a
   * batch; `settled` is called as each datum ends. `home` is where the tasks clone from and hand in to:
   * the origin's URL, or the dataset's own path on a shared file system.
   */
  runBatch(ds: Dataset, home: string, baseCommit: string, dataset: string, jobs: readonly ComputeJob[], settled: Batch['settled'], hooks: SlurmBatchHooks = {}): Promise<void> {
    if (!jobs.length) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error('the Slurm executor was cancelled'));
    const spec = jobs[0]!.spec;
    return new Promise<void>((resolve) => {
      const open = new Map(jobs.map((job) => [job.key, { job, restarts: 0 }] as const));
      const batch: Batch = {
        ds,
        home,
        baseCommit,
        name: `${dataset}-${spec.name}`.replace(/[^A-Za-z0-9_.-]/g, '_'),
        options: sbatchOptions(spec, Math.min(jobs.length, this.settings.batchSize)),
        settled,
        hooks,
        open,
        done: resolve,
      };
      for (let i = 0; i < jobs.length; i += this.settings.batchSize) this.waiting.push({ batch, jobs: jobs.slice(i, i + this.settings.batchSize) });
      this.gather ??= setTimeout(() => {
        this.gather = undefined;
        this.start();
      }, GATHER_MS);
    });
  }

  /**
   * scancels every array job of this dispatcher. Its unsettled datums fail this try as cancelled (not for
   * good: a queue job runs again when the daemon is back).
   */
  async cancel(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.gather);
    const ids = [...this.arrays].flatMap((a) => (a.jobId ? [a.jobId] : []));
    await this.slurm.cancel(ids);
    if (ids.length) this.log(`slurm: cancelled ${ids.join(', ')}`);
    const reason = 'cancelled: minipach stopped, and scancelled its Slurm jobs';
    const batches = new Set([...this.waiting.map((w) => w.batch), ...[...this.arrays].flatMap((a) => a.tasks.map((t) => t.batch))]);
    this.waiting = [];
    this.arrays.clear();
    for (const b of batches) for (const key of [...b.open.keys()]) await this.settle(b, key, failure(reason));
  }

  private start(): void {
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
      if (!this.stopped && (this.waiting.length || this.arrays.size)) this.start();
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped && (this.waiting.length || this.arrays.size)) {
      await this.submitWaiting();
      await this.readReports();
      if (Date.now() >= this.nextSqueue) await this.checkStates();
      this.finishArrays();
      if (this.waiting.length || this.arrays.size) await sleep(this.settings.pollMs ?? 1000);
    }
  }

  /** Tasks of ours queued or running, as far as we know. */
  private inFlight(): number {
    let n = 0;
    for (const a of this.arrays) for (const t of a.tasks) if (held(t).length) n++;
    return n;
  }

  /** Submits waiting batches as arrays: one per pipeline's options, within the caps. */
  private async submitWaiting(): Promise<void> {
    let room = this.settings.maxQueued - this.inFlight();
    while (this.waiting.length && room > 0 && !this.stopped) {
      const first = this.waiting[0]!;
      const same = (w: { batch: Batch }) => w.batch.ds === first.batch.ds && w.batch.home === first.batch.home && w.batch.name === first.batch.name && w.batch.options.join('\0') === first.batch.options.join('\0');
      const group = this.waiting.filter(same).slice(0, Math.min(room, this.settings.maxArray));
      this.waiting = this.waiting.filter((w) => !group.includes(w));
      room -= group.length;
      // Not submitted (the origin away): the rest waits for the next round too.
      if (!(await this.submit(group))) break;
    }
  }

  /** Submits one array; false when it could not, for now, and its batches wait again. */
  private async submit(group: { batch: Batch; jobs: ComputeJob[] }[]): Promise<boolean> {
    const { ds, home, name, options } = group[0]!.batch;
    const tag = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const array: ArrayJob = { tag, ds, home, tasks: [], read: new Map() };
    const files = group.map(({ batch, jobs }, index): { path: string; mode: string; content: Buffer } => {
      const description: TaskBatch = {
        baseCommit: batch.baseCommit,
        ...(batch.ds.storage ? { storage: batch.ds.storage } : {}),
        jobs: jobs.map((j) => ({ key: j.key, pipeline: j.spec.name, datumName: j.datum.name, outputDir: j.outputDir, specFile: j.spec.file, specSource: j.spec.source, datum: j.datum })),
      };
      return { path: `${index}.json`, mode: '100644', content: Buffer.from(JSON.stringify(description)) };
    });
    try {
      const [commit] = await ds.repo.writeCommits(undefined, [{ changes: files, message: `minipach: Slurm batches ${tag}` }]);
      await ds.repo.setRef(batchesRef(tag), commit!);
      if (!this.settings.sharedFs) {
        const r = await ds.repo.push(home, [`+${commit}:${batchesRef(tag)}`]);
        if (r.status !== 'ok') throw new SubmitError(`could not put the batches where the tasks find them (${home}): ${r.message}`, true);
      }
      array.jobId = await this.sbatch(taskScript(home, tag, this.settings), group.length, name, options);
    } catch (e) {
      await ds.repo.deleteRefs([batchesRef(tag)]);
      if (e instanceof SubmitError && e.transient && !this.stopped) {
        // The batches could not reach the origin (away for a moment): they wait, and go with the next round.
        this.log(`slurm: ${e.message}; trying again`);
        this.waiting.push(...group);
        return false;
      }
      // Refused for good (options Slurm does not take): the datums fail, with Slurm's words.
      const reason = (e as Error).message;
      this.log(`slurm: ${reason}`);
      for (const { batch, jobs } of group) for (const job of jobs) await this.settle(batch, job.key, failure(reason, { permanent: true }));
      return true;
    }
    group.forEach(({ batch, jobs }, index) => {
      const task: Task = { array, index, batch, keys: jobs.map((j) => j.key), endedPolls: 0, missing: 0 };
      array.tasks.push(task);
      for (const j of jobs) {
        const o = batch.open.get(j.key);
        if (o) o.task = task;
        batch.hooks.onSubmitted?.(j, `${array.jobId}_${index}`);
      }
    });
    this.arrays.add(array);
    this.nextSqueue = Date.now() + 1000;
    this.squeueEvery = 1000;
    this.log(`slurm: array job ${array.jobId} (${name}): ${group.length} task(s), ${group.reduce((n, g) => n + g.jobs.length, 0)} datum(s)`);
    return true;
  }

  /** sbatch, tried again with backoff while it fails for a reason that may pass. */
  private async sbatch(script: string, n: number, name: string, options: readonly string[]): Promise<string> {
    const output = this.settings.output ?? '/tmp/minipach-%A_%a.log';
    for (let wait = 1000; ; wait = Math.min(wait * 2, 30_000)) {
      try {
        return await this.slurm.submitArray(script, n, { name, maxRunning: this.settings.maxRunning, output, options });
      } catch (e) {
        if (!(e instanceof SubmitError) || !e.transient || this.stopped) throw e;
        this.log(`slurm: ${e.message}; trying again in ${wait / 1000} s`);
        await sleep(wait);
      }
    }
  }

  /** Reads the reports that changed since the last look, and settles what they say. */
  private async readReports(): Promise<void> {
    const byHome = new Map<string, ArrayJob[]>();
    for (const a of this.arrays) byHome.set(`${a.ds.dir}\0${a.home}`, [...(byHome.get(`${a.ds.dir}\0${a.home}`) ?? []), a]);
    for (const arrays of byHome.values()) {
      const { ds, home } = arrays[0]!;
      const seen = new Map(arrays.flatMap((a) => [...a.read].map(([i, c]) => [reportRef(a.tag, i), c] as const)));
      const changed = await changedReports(ds, this.settings.sharedFs ? undefined : home, arrays.map((a) => a.tag), seen, (m) => this.log(`slurm: ${m}`));
      for (const a of arrays) {
        for (const t of a.tasks) {
          const got = changed.get(reportRef(a.tag, t.index));
          if (!got) continue;
          a.read.set(t.index, got.commit);
          t.lastSign = Date.now();
          await this.apply(t, got.report);
        }
      }
    }
  }


  private async apply(task: Task, report: TaskReport): Promise<void> {
    const batch = task.batch;
    const fresh = report.entries.filter((e) => batch.open.has(e.key));
    const ok = fresh.filter((e): e is Extract<ReportEntry, { ok: true }> => e.ok);
    if (ok.length && !this.settings.sharedFs) {
      // The run commits the task handed in to the home, here too (the committer reads them).
      const f = await batch.ds.repo.fetch(batch.home, ok.map((e) => `+${runRef(e.key)}:${runRef(e.key)}`), { noTags: true });
      if (!f.ok) {
        this.log(`slurm: could not fetch results of ${report.task} from ${batch.home}: ${f.message}`);
        task.array.read.delete(task.index);
        return;
      }
    }
    for (const e of fresh) {
      if (!e.ok) {
        await this.settle(batch, e.key, { ok: false, reason: e.reason, exit: e.exit, stderrTail: e.stderrTail, resources: e.resources, log: e.log, timedOut: e.timedOut, permanent: e.permanent });
        continue;
      }
      let commit = e.commit;
      const job = batch.open.get(e.key)!.job;
      try {
        if (batch.hooks.handIn) commit = await batch.hooks.handIn(job, { run: { commit }, annexKeys: e.annexKeys });
      } catch (x) {
        const reason = (x as Error).message;
        await this.settle(batch, e.key, { ok: false, reason, stderrTail: '', resources: e.resources, log: `${e.log}\n--- minipach ---\n${reason}\n` });
        continue;
      }
      await this.settle(batch, e.key, { ok: true, commit, outputs: e.outputs, record: e.record, resources: e.resources, log: `${e.log}\n--- slurm ---\ntask ${report.task} on ${report.host}\n` });
    }
  }

  private async settle(batch: Batch, key: string, outcome: ComputeOutcome): Promise<void> {
    const o = batch.open.get(key);
    if (!o) return;
    batch.open.delete(key);
    await batch.settled(o.job, outcome).catch((e: Error) => this.log(`slurm: settling ${key.slice(0, 12)}: ${e.message}`));
    if (!batch.open.size) batch.done();
  }

  /** One squeue for every task; an ended task's unreported datums are settled by its state. */
  private async checkStates(): Promise<void> {
    let states: TaskState[];
    try {
      states = await this.slurm.tasks();
    } catch (e) {
      this.log(`slurm: ${(e as Error).message}`);
      this.squeueEvery = Math.min(this.squeueEvery * 2, 10_000);
      this.nextSqueue = Date.now() + this.squeueEvery;
      return;
    }
    const byTask = new Map(states.map((s) => [`${s.job}_${s.task}`, s]));
    const summary = [...this.arrays].flatMap((a) => a.tasks.map((t) => byTask.get(`${a.jobId}_${t.index}`)?.state ?? '-')).join(',');
    // Back off while nothing changes (one query covers all of minipach's jobs; still, sites watch squeue load).
    this.squeueEvery = summary === this.lastStates ? Math.min(this.squeueEvery * 2, 10_000) : 1000;
    this.lastStates = summary;
    this.nextSqueue = Date.now() + this.squeueEvery;
    for (const a of this.arrays) {
      for (const t of a.tasks) {
        const mine = held(t);
        if (!mine.length) continue;
        const s = byTask.get(`${a.jobId}_${t.index}`);
        if (s?.state === 'RUNNING') {
          t.lastSign ??= Date.now();
          // Running by Slurm's word, yet silent past its heartbeats: a node that died and came back within
          // seconds leaves its tasks RUNNING with nothing behind them. Cancel the task; its datums run again.
          if (Date.now() - t.lastSign > this.staleMs()) {
            this.log(`slurm: task ${a.jobId}_${t.index} shows RUNNING but has not reported for ${Math.round((Date.now() - t.lastSign) / 1000)} s: cancelling it`);
            await this.slurm.cancel([`${a.jobId}_${t.index}`]);
            await this.requeue(t, mine, `its node went silent (task ${a.jobId}_${t.index} RUNNING without a heartbeat)`);
            continue;
          }
        }
        // Gone from squeue (purged after MinJobAge, or lost with the controller's state): as a lost node.
        const state = s ? s.state : ++t.missing >= 3 ? 'NODE_FAIL' : undefined;
        if (!state || !hasEnded(state)) continue;
        // Read its report once more first: a task that just ended may have reported a moment ago.
        if (t.endedPolls++ === 0) {
          this.nextSqueue = 0;
          continue;
        }
        const end = endedTask(state, s?.reason ?? 'not in squeue any more', `${a.jobId}_${t.index}`);
        if (end.again) await this.requeue(t, mine, end.reason);
        else for (const key of mine) await this.settle(t.batch, key, failure(end.reason, { timedOut: end.timedOut, permanent: state === 'CANCELLED' }));
      }
    }
    // Datums of one ended task that run again go together, as one batch.
    this.waiting = this.regroup(this.waiting);
  }

  /** A task's datums run again, not counting a try (a lost node), at most MAX_RESTARTS times each. */
  private async requeue(t: Task, keys: readonly string[], reason: string): Promise<void> {
    for (const key of keys) {
      const o = t.batch.open.get(key)!;
      if (o.restarts >= MAX_RESTARTS) {
        await this.settle(t.batch, key, failure(`${reason}, ${MAX_RESTARTS + 1} times`));
        continue;
      }
      o.restarts++;
      o.task = undefined;
      this.log(`slurm: ${key.slice(0, 12)} runs again: ${reason}`);
      this.waiting.push({ batch: t.batch, jobs: [o.job] });
    }
  }

  /** How long a running task may stay silent: four heartbeats. */
  private staleMs(): number {
    return 4 * (this.settings.heartbeatMs ?? heartbeatMs());
  }

  /** Waiting entries of one batch merged (up to a batch's size), so datums that run again share a task. */
  private regroup(waiting: readonly { batch: Batch; jobs: ComputeJob[] }[]): { batch: Batch; jobs: ComputeJob[] }[] {
    const out: { batch: Batch; jobs: ComputeJob[] }[] = [];
    for (const w of waiting) {
      const into = out.find((o) => o.batch === w.batch && o.jobs.length + w.jobs.length <= this.settings.batchSize);
      if (into) into.jobs.push(...w.jobs);
      else out.push({ batch: w.batch, jobs: [...w.jobs] });
    }
    return out;
  }

  /** Forgets arrays none of whose datums wait on them any more, and their refs. */
  private finishArrays(): void {
    for (const a of this.arrays) {
      if (a.tasks.some((t) => held(t).length)) continue;
      this.arrays.delete(a);
      const refs = [batchesRef(a.tag), ...a.tasks.map((t) => reportRef(a.tag, t.index))];
      void a.ds.repo.deleteRefs(refs);
      if (!this.settings.sharedFs) void a.ds.repo.push(a.home, refs.map((r) => `:${r}`)).catch(() => undefined);
    }
  }
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The datums a task still answers for: unsettled, and not sent to another task since. */
const held = (t: Task) => t.keys.filter((k) => t.batch.open.get(k)?.task === t);
