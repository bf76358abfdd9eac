/**
 * `minipach worker`: takes datum jobs from the queue and computes them, on this machine or any other that
 * reaches Redis and the dataset's origin. It keeps one clone per dataset (no checkout of its own: every job
 * gets a sparse scratch checkout of it at the job's base commit, holding only that datum's inputs), and
 * hands each result back as a commit on `refs/minipach/runs/<key>` of the origin plus the outputs' annexed
 * content copied there (hand-in.ts). Nothing reaches the branch from here: the daemon's committer does that.
 *
 * Crash safety comes from BullMQ: a worker killed mid-job stops renewing the job's lock, the job is moved
 * back to waiting and another try starts from a fresh checkout; the dead try never handed anything in.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RedisConnection } from '../adapters/redis.js';
import { Annex } from '../adapters/annex.js';
import { GitRepo } from '../adapters/git.js';
import { isAlive } from '../adapters/process.js';
import { datumLabel } from '../core/datum-label.js';
import { startQueueWorker, PermanentFailure, type WorkerJob } from '../queue/queue-worker.js';
import { loadSpec } from '../core/spec.js';
import { SpecError } from '../core/errors.js';
import { openDataset, type Dataset } from '../adapters/dataset.js';
import { runCompute } from './executor.js';
import { Batcher } from './batcher.js';
import { DEFAULT_BATCH_SIZE, type SlurmSettings } from './executors.js';
import { SlurmArrays } from './slurm.js';
import { HandIn } from './hand-in.js';
import { storageOf } from '../adapters/storage.js';
import { runNativeBatch } from './native.js';
import type { ComputeJob, ComputeOutcome } from './outcome.js';
import type { PipelineSpec } from '../core/spec.js';
import type { DatumJobData, DatumJobResult } from '../queue/datum-queue.js';

export interface WorkerOptions {
  readonly connection: RedisConnection;
  /** @defaultValue "minipach" */
  readonly prefix?: string;
  /** Batches (native) or datums (datalad) run at once. @defaultValue 1 */
  readonly concurrency?: number;
  /** The most datums of one native batch (one scratch checkout). @defaultValue 50 */
  readonly batchSize?: number;
  /** How long a batch's first datum waits for others, in milliseconds. @defaultValue 50 */
  readonly batchWaitMs?: number;
  /** Clones live in a slot of this directory. @defaultValue `$XDG_CACHE_HOME/minipach/worker` */
  readonly stateDir?: string;
  /**
   * Milliseconds a job's lock lasts without renewal: how soon a job of a killed worker runs again.
   * @defaultValue 30000 (BullMQ's default)
   */
  readonly lockDurationMs?: number;
  readonly log?: (msg: string) => void;
  /** Set: datums of datasets with `executor: slurm` are sent to Slurm from here, as array tasks (exec/slurm.ts). */
  readonly slurm?: SlurmSettings;
}

export interface RunningWorker {
  readonly name: string;
  /** Finishes the jobs in hand (or hands them back, past the grace time), then stops. */
  close(): Promise<void>;
}

/** Log text kept with a job: enough to see what went wrong, bounded so Redis does not fill up with logs. */
const LOG_LIMIT = 64 * 1024;
const clip = (s: string) => (s.length > LOG_LIMIT ? `[... ${s.length - LOG_LIMIT} bytes cut]\n` + s.slice(-LOG_LIMIT) : s);

export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const log = opts.log ?? (() => undefined);
  const slot = await claimSlot(opts.stateDir ?? defaultStateDir());
  const name = `${os.hostname()}/${path.basename(slot.dir)}/${process.pid}`;
  const clones = new Clones(slot.dir, name, log);
  const parallel = opts.concurrency ?? 1;
  const size = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const batcher = nativeBatcher(clones, slot, { size, waitMs: opts.batchWaitMs ?? 50, parallel });
  const slurm = opts.slurm && slurmBatcher(clones, opts.slurm, log);
  // Enough jobs in hand to fill `concurrency` batches; each job's lock is renewed while it waits its turn.
  // Sending to Slurm, enough to fill the arrays it may have queued (up to a bound: each is a lock to renew).
  const worker = await startQueueWorker(
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: parallel * size + (opts.slurm ? Math.min(opts.slurm.maxQueued * opts.slurm.batchSize, 5000) : 0),
      lockDurationMs: opts.lockDurationMs,
      name,
      onError: (e) => log(`worker: ${e.message}`),
      // "done" only once Redis has the job completed: a worker killed before that has its datum run again.
      onCompleted: (d) => log(`${datumLabel(d.pipeline, d.datumName)}: done`),
    },
    (job) => processJob(job, clones, slot, { native: batcher, slurm: slurm?.batcher }, name, log),
  );
  return {
    name,
    async close() {
      // Slurm jobs are not waited for: they are scancelled, and their datums run again when the daemon is back.
      await slurm?.arrays.cancel();
      await worker.close();
      await slot.release();
    },
  };
}

/** A datum job as the native batches of a worker see it. */
interface BatchItem {
  readonly data: DatumJobData;
  readonly spec: PipelineSpec;
  /** Counts and logs the try, as the datum starts (or is submitted to Slurm, `where`). */
  readonly start: (where?: string) => Promise<void>;
}

/**
 * Native datums are gathered into batches (one scratch checkout, one git-annex process, per batch; see
 * batcher.ts); each job still ends, and hands its result in, as soon as its own datum does.
 */
function nativeBatcher(clones: Clones, slot: Slot, opts: { size: number; waitMs: number; parallel: number }): Batcher<BatchItem, ComputeOutcome> {
  return new Batcher<BatchItem, ComputeOutcome>(opts, async (_group, items, settle) => {
    const first = items[0]!.data;
    const ds = await clones.get(first);
    await clones.ensureCommit(ds, first.baseCommit);
    const byKey = new Map(items.map((i) => [i.data.key, i]));
    const groups: number[] = [];
    try {
      await runNativeBatch(
        ds,
        first.baseCommit,
        items.map((i) => jobOfData(i.data, i.spec)),
        async (job, outcome) => settle(byKey.get(job.key)!, outcome),
        {
          onStart: (job) => byKey.get(job.key)!.start(),
          handIn: (job, result) => clones.handIn(ds).submit(job.key, result),
          onSpawn: (pid) => slot.track(groups[groups.push(pid) - 1]!),
        },
      );
    } finally {
      for (const g of groups) slot.untrack(g);
    }
  });
}

/**
 * Datums of `executor: slurm` datasets, gathered into batches of one pipeline, each sent to Slurm as an array
 * task; outcomes come back as the tasks report them. On a shared file system the tasks work in this clone,
 * and a result is handed in to the origin from here, as a worker's own.
 */
function slurmBatcher(clones: Clones, settings: SlurmSettings, log: (m: string) => void): { batcher: Batcher<BatchItem, ComputeOutcome>; arrays: SlurmArrays } {
  const arrays = new SlurmArrays(settings, log);
  const batcher = new Batcher<BatchItem, ComputeOutcome>({ size: settings.batchSize, waitMs: 200, parallel: settings.maxQueued }, async (_group, items, settle) => {
    const first = items[0]!.data;
    const ds = await clones.get(first);
    await clones.ensureCommit(ds, first.baseCommit);
    const byKey = new Map(items.map((i) => [i.data.key, i]));
    await arrays.runBatch(ds, settings.sharedFs ? ds.dir : first.origin, first.baseCommit, first.dataset, items.map((i) => jobOfData(i.data, i.spec)), async (job, outcome) => settle(byKey.get(job.key)!, outcome), {
      handIn: settings.sharedFs ? (job, result) => clones.handIn(ds).submit(job.key, result) : undefined,
      onSubmitted: (job, task) => void byKey.get(job.key)!.start(`Slurm task ${task}`),
    });
  });
  return { batcher, arrays };
}

const jobOfData = (d: DatumJobData, spec: PipelineSpec): ComputeJob => ({ spec, datum: d.datum, key: d.key, outputDir: d.outputDir, baseCommit: d.baseCommit });

async function processJob(
  job: WorkerJob,
  clones: Clones,
  slot: Slot,
  batchers: { readonly native: Batcher<BatchItem, ComputeOutcome>; readonly slurm?: Batcher<BatchItem, ComputeOutcome> },
  name: string,
  log: (m: string) => void,
): Promise<DatumJobResult> {
  const d = job.data;
  const label = datumLabel(d.pipeline, d.datumName);
  const start = async (where?: string) => {
    const line = `${label}: try ${await job.startTry(where)} (${d.key.slice(0, 12)})${where ? ` on ${where}` : ''}`;
    log(line);
    if (where) await job.log(line);
  };
  const spec = loadSpec(d.specFile, d.specSource);
  if (spec instanceof SpecError) throw new PermanentFailure(spec.message);
  let outcome: ComputeOutcome;
  if ((d.executor ?? 'native') === 'native') {
    outcome = await batchers.native.submit(`${d.dataset}\0${d.origin}\0${d.baseCommit}`, { data: d, spec, start });
  } else if (d.executor === 'slurm') {
    // Not this worker's to run: one without Slurm settings leaves it to one that has them (the daemon's).
    if (!batchers.slurm) throw new Error(`${label} runs on Slurm, and this worker has no Slurm settings (the daemon's own workers take them: see slurm in its configuration)`);
    outcome = await batchers.slurm.submit(`${d.dataset}\0${d.origin}\0${d.baseCommit}\0${d.pipeline}`, { data: d, spec, start });
  } else {
    await start();
    const ds = await clones.get(d);
    await clones.ensureCommit(ds, d.baseCommit);
    let group: number | undefined;
    outcome = await runCompute(ds, jobOfData(d, spec), { handIn: (job, result) => clones.handIn(ds).submit(job.key, result), onSpawn: (pid) => slot.track((group = pid)) }).finally(() => group && slot.untrack(group));
  }
  await job.log(clip(outcome.log));
  if (outcome.ok) {
    // The run commit carries the blobs: the bytes stay out of Redis.
    const outputs = outcome.outputs.map(({ content: _bytes, ...entry }) => entry);
    return { commit: outcome.commit, outputs, record: outcome.record, resources: outcome.resources, log: clip(outcome.log), worker: name };
  }
  log(`${label}: ${outcome.reason}`);
  await job.recordFailedTry({ reason: outcome.reason, exit: outcome.exit, stderrTail: outcome.stderrTail, timedOut: outcome.timedOut, log: clip(outcome.log) });
  throw outcome.permanent ? new PermanentFailure(outcome.reason) : new Error(outcome.reason);
}

/** One clone per dataset origin inside the worker's slot, made on first use and fetched as jobs need. */
class Clones {
  private readonly opened = new Map<string, Promise<Dataset>>();
  private readonly fetches = new Map<string, Promise<unknown>>();
  private readonly handIns = new Map<string, HandIn>();

  constructor(private readonly dir: string, private readonly name: string, private readonly log: (m: string) => void) {}

  get({ dataset, origin, storage }: Pick<DatumJobData, 'dataset' | 'origin' | 'storage'>): Promise<Dataset> {
    const id = `${dataset}\0${origin}\0${storage ?? ''}`;
    let ds = this.opened.get(id);
    if (!ds) {
      ds = this.open(dataset, origin, storage);
      this.opened.set(id, ds);
      ds.catch(() => this.opened.delete(id));
    }
    return ds;
  }

  private async open(dataset: string, origin: string, storage: string | undefined): Promise<Dataset> {
    const dir = path.join(this.dir, dataset);
    const existing = new GitRepo(dir);
    const url = await existsDir(dir) ? await existing.remoteUrl('origin') : undefined;
    if (url !== origin) {
      // Missing, or a clone of another origin under the same dataset name: start over.
      await rm(dir, { recursive: true, force: true });
      await mkdir(this.dir, { recursive: true });
      await GitRepo.clone(origin, dir);
      // Inputs from a local origin are hard-linked, not copied (annex objects are read-only).
      await new Annex(dir).init(`minipach worker ${this.name}`, { hardlink: true });
    } else {
      // Scratch checkouts of a worker that died are of no use to anyone.
      await existing.pruneWorktrees();
    }
    const ds = await openDataset(dir, undefined, undefined, { storage });
    // Inputs come from the bucket (git-annex gets them from any enabled remote that has them): enable it now.
    await storageOf(ds);
    return ds;
  }

  /** The hand-in of a clone's results to its origin (one per clone, so that they go together). */
  handIn(ds: Dataset): HandIn {
    let h = this.handIns.get(ds.dir);
    if (!h) this.handIns.set(ds.dir, (h = new HandIn(ds, 'origin', this.log)));
    return h;
  }

  /** Fetches from the origin when the base commit is not here yet; fetches of one clone take turns. */
  async ensureCommit(ds: Dataset, commit: string): Promise<void> {
    if (await ds.repo.resolve(commit)) return;
    const prev = this.fetches.get(ds.dir) ?? Promise.resolve();
    const next = prev.then(async () => {
      if (await ds.repo.resolve(commit)) return;
      const f = await ds.repo.fetch('origin', []);
      if (!f.ok) throw new Error(`could not fetch from the origin: ${f.message}`);
    });
    this.fetches.set(ds.dir, next.catch(() => undefined));
    await next;
    if (!(await ds.repo.resolve(commit))) throw new PermanentFailure(`base commit ${commit.slice(0, 12)} is not in the origin any more (was the branch force-pushed?)`);
  }
}

interface Slot {
  readonly dir: string;
  track(pid: number): void;
  untrack(pid: number): void;
  release(): Promise<void>;
}

const existsDir = (dir: string) => stat(dir).then((s) => s.isDirectory(), () => false);


function defaultStateDir(): string {
  return path.join(process.env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'), 'minipach', 'worker');
}

/**
 * Workers on one machine each claim a slot (a directory with a pid file), so two never share a clone.
 * A slot whose owner died is taken over: process groups of its jobs still running are killed first, so a
 * killed worker's orphaned command cannot keep writing into the clone.
 */
async function claimSlot(root: string): Promise<Slot> {
  await mkdir(root, { recursive: true });
  for (let n = 0; ; n++) {
    const dir = path.join(root, `slot-${n}`);
    await mkdir(dir, { recursive: true });
    const owner = path.join(dir, 'owner.pid');
    const pid = Number((await readFile(owner, 'utf8').catch(() => '')).trim());
    if (pid && pid !== process.pid && isAlive(pid)) continue;
    try {
      await writeFile(owner, String(process.pid), pid ? {} : { flag: 'wx' });
    } catch {
      continue; // another worker claimed it just now
    }
    const groups = path.join(dir, 'groups');
    await mkdir(groups, { recursive: true });
    for (const g of await readdir(groups)) {
      try {
        process.kill(-Number(g), 'SIGKILL');
      } catch {
        /* gone */
      }
      await rm(path.join(groups, g), { force: true });
    }
    return {
      dir,
      track(groupPid) {
        // Synchronous, so a quick job's untrack cannot overtake its track.
        writeFileSync(path.join(groups, String(groupPid)), '');
      },
      untrack(groupPid) {
        rmSync(path.join(groups, String(groupPid)), { force: true });
      },
      async release() {
        await rm(owner, { force: true });
      },
    };
  }
}
