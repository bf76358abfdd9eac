/**
 * The queue as an executor: compute requests become datum jobs on BullMQ, and the runner waits for them to
 * settle. Completion events wake the wait early; a sweep of all pending jobs every few seconds covers events
 * missed while Redis was away, and re-adds a job that Redis lost (e.g. it was wiped), so no datum is ever
 * left waiting for nothing.
 */
import type { Job, JobState } from 'bullmq';
import type { Dataset } from '../adapters/dataset.js';
import type { Plan } from '../core/plan.js';
import type { ComputeOutcome } from '../exec/outcome.js';
import type { ComputeRequest, ComputeRunner } from '../exec/runner.js';
import { dropRunRefs, fetchRunRefs } from '../results/branch.js';
import { jobId, type DatumJobData, type DatumJobResult, type DatumQueue } from './datum-queue.js';
import type { ExecutorName } from '../exec/executors.js';
import type { LsTreeEntry } from '../adapters/git.js';
import { storageOf } from '../adapters/storage.js';
import { annexKeyFromLinkTarget } from '../core/content-key.js';
import { StorageError } from '../core/storage.js';
import { MODE_SYMLINK } from '../core/tree.js';

/** Turns a settled job into the outcome the scheduler expects from any runner. */
function outcomeOf(job: Job<DatumJobData, DatumJobResult>, state: JobState | 'unknown'): ComputeOutcome | undefined {
  if (state === 'completed' && job.returnvalue) {
    const r = job.returnvalue;
    return { ok: true, commit: r.commit, outputs: r.outputs, record: r.record, resources: r.resources, log: r.log };
  }
  if (state === 'failed') {
    const t = job.data.lastTry;
    const reason = t?.reason ?? job.failedReason ?? 'failed';
    const tries = job.attemptsMade > 1 ? ` (after ${job.attemptsMade} tries)` : '';
    return { ok: false, reason: reason + tries, exit: t?.exit, stderrTail: t?.stderrTail ?? '', log: t?.log ?? reason, resources: { wall: 0 }, timedOut: t?.timedOut };
  }
  return undefined;
}

/** BullMQ's reason for a job that stalled more often than its limit. */
const STALLED = /stalled more than allowable limit/;

/** How many times one schedule starts a stalled-out job over before it counts as failed. */
const MAX_STALL_RESTARTS = 3;

/** How often every pending job is looked at, besides the events that wake the wait early. */
const SWEEP_MS = 2000;

/** Runs compute requests on the queue and waits for them. */
export class QueueRunner implements ComputeRunner {
  /** Called once a round's jobs are all on the queue. */
  onEnqueued?: () => void;
  /** Told what keeps finished results from being integrated (the bucket is away). */
  onWarning?: (message: string) => void;
  private lastAway?: string;

  constructor(
    private readonly q: DatumQueue,
    private readonly ds: Dataset,
    private readonly target: { readonly dataset: string; readonly origin: string; readonly executor?: ExecutorName; readonly pipelineExecutors?: Readonly<Record<string, ExecutorName>> },
    /** Aborting stops waiting (the daemon is stopping); the jobs stay queued for the next start. */
    private readonly signal?: AbortSignal,
  ) {}

  async run(requests: readonly ComputeRequest[], settled: (request: ComputeRequest, outcome: ComputeOutcome) => Promise<void>): Promise<void> {
    const pending = new Map<string, ComputeRequest>();
    const dataOf = (r: ComputeRequest): DatumJobData => ({
      dataset: this.target.dataset,
      origin: this.target.origin,
      baseCommit: r.baseCommit,
      pipeline: r.plan.pipeline,
      datumName: r.plan.name,
      key: r.plan.key,
      outputDir: r.plan.outputDir,
      specFile: r.spec.file,
      specSource: r.spec.source,
      datum: r.plan.datum!,
      ...(this.ds.storage ? { storage: this.ds.storage } : {}),
      executor: this.target.pipelineExecutors?.[r.plan.pipeline] ?? this.target.executor,
    });
    for (const r of requests) pending.set(await this.q.enqueue(dataOf(r), r.spec.datumTries), r);
    this.onEnqueued?.();
    if (!pending.size) return;

    const restarts = new Map<string, number>();
    let wake: (() => void) | undefined;
    const woken = new Set<string>();
    const onEvent = ({ jobId: id }: { jobId: string }) => {
      if (!pending.has(id)) return;
      woken.add(id);
      wake?.();
    };
    this.q.events.on('completed', onEvent);
    this.q.events.on('failed', onEvent);
    try {
      let lastSweep = 0;
      while (pending.size) {
        this.signal?.throwIfAborted();
        const sweep = Date.now() - lastSweep >= SWEEP_MS;
        const ids = sweep ? [...pending.keys()] : [...woken].filter((id) => pending.has(id));
        woken.clear();
        if (sweep) lastSweep = Date.now();
        const looked: { id: string; r: ComputeRequest; job: Job<DatumJobData, DatumJobResult>; outcome: ComputeOutcome }[] = [];
        for (const id of ids) {
          const r = pending.get(id)!;
          const job = await this.q.get(id).catch(() => undefined);
          if (!job) {
            if (sweep) await this.q.enqueue(dataOf(r), r.spec.datumTries).catch(() => undefined);
            continue;
          }
          const outcome = outcomeOf(job, await job.getState());
          if (outcome) looked.push({ id, r, job, outcome });
        }
        const present = await this.presentCommits(looked.flatMap(({ outcome: o }) => (o.ok ? [o.commit] : [])));
        const content = await this.contentInStorage(looked.flatMap(({ id, outcome: o }) => (o.ok && present.has(o.commit) ? [{ id, outputs: o.outputs }] : [])));
        for (const { id, r, job, outcome } of looked) {
          if (outcome.ok && !present.has(outcome.commit)) {
            // A result whose run commit is gone (its ref was dropped after an earlier integration that
            // crashed before forgetting the job) cannot be integrated: compute it again.
            await job.remove().catch(() => undefined);
            await this.q.enqueue(dataOf(r), r.spec.datumTries);
            continue;
          }
          // The bucket cannot say whether the content is there: the result waits (it is integrated only
          // once its content is confirmed), and the next sweep asks again.
          if (outcome.ok && content.away) continue;
          if (outcome.ok && content.missing.has(id)) {
            const n = (restarts.get(id) ?? 0) + 1;
            restarts.set(id, n);
            if (n <= MAX_STALL_RESTARTS) {
              this.onWarning?.(`${r.plan.pipeline}/${r.plan.name}: its result's content is not in the bucket "${this.ds.storage}"; computing it again`);
              await job.remove().catch(() => undefined);
              await this.q.enqueue(dataOf(r), r.spec.datumTries);
              continue;
            }
            pending.delete(id);
            const reason = `its outputs' content never reached the bucket "${this.ds.storage}" (after ${n} tries); do the workers use the same storage as the daemon?`;
            await settled(r, { ok: false, reason, stderrTail: '', log: reason, resources: outcome.resources });
            continue;
          }
          if (!outcome.ok && STALLED.test(job.failedReason ?? '') && (restarts.get(id) ?? 0) < MAX_STALL_RESTARTS) {
            // Stalled past BullMQ's limit: its workers died, or lost Redis, while holding it (a worker holds
            // a batch's worth of jobs). Not the datum's fault, so it starts over, a few times at most: a datum
            // that keeps killing its workers still ends as failed.
            restarts.set(id, (restarts.get(id) ?? 0) + 1);
            await job.remove().catch(() => undefined);
            await this.q.enqueue(dataOf(r), r.spec.datumTries);
            continue;
          }
          pending.delete(id);
          await settled(r, outcome);
        }
        if (pending.size && !woken.size) {
          await new Promise<void>((res) => {
            const done = () => {
              clearTimeout(timer);
              this.signal?.removeEventListener('abort', done);
              res();
            };
            const timer = setTimeout(done, 250);
            wake = done;
            this.signal?.addEventListener('abort', done, { once: true });
          });
        }
        wake = undefined;
      }
    } finally {
      this.q.events.off('completed', onEvent);
      this.q.events.off('failed', onEvent);
    }
  }

  /** Which of the run commits are here (fetched from the remote first when some are not): one git process, not one per result. */
  private async presentCommits(commits: readonly string[]): Promise<Set<string>> {
    if (!commits.length) return new Set();
    const here = async () => new Set((await this.ds.repo.objectSizes(commits)).keys());
    const found = await here();
    if (found.size === commits.length || !this.ds.remote) return found;
    await fetchRunRefs(this.ds).catch(() => undefined);
    return here();
  }

  /**
   * With storage: which results' annexed outputs are not all in the bucket (by asking it), after recording
   * those that are in the git-annex branch here (so the branch's next push tells every clone where they are).
   * `away`: the bucket could not answer; nothing is decided.
   */
  private async contentInStorage(results: readonly { id: string; outputs: readonly LsTreeEntry[] }[]): Promise<{ missing: Set<string>; away?: StorageError }> {
    const missing = new Set<string>();
    const storage = storageOf(this.ds);
    if (!storage || !results.length) return { missing };
    const links = results.flatMap((r) => r.outputs.filter((e) => e.mode === MODE_SYMLINK).map((e) => ({ id: r.id, oid: e.oid })));
    const targets = await this.ds.repo.readBlobs([...new Set(links.map((l) => l.oid))]);
    const keysOf = new Map<string, string[]>();
    for (const l of links) {
      const key = annexKeyFromLinkTarget(targets.get(l.oid)?.toString('utf8') ?? '');
      if (!key) continue;
      const keys = keysOf.get(l.id);
      if (keys) keys.push(key);
      else keysOf.set(l.id, [key]);
    }
    try {
      const s = await storage;
      const found = await s.inBucket([...keysOf.values()].flat());
      for (const [id, keys] of keysOf) if (keys.some((k) => !found.present.has(k))) missing.add(id);
      await s.recordPresent([...found.present]);
      this.lastAway = undefined;
      return { missing };
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      if (this.lastAway !== e.message) this.onWarning?.(`${e.message}; ${results.length} finished result(s) wait for it`);
      this.lastAway = e.message;
      return { missing, away: e };
    }
  }

  /**
   * Finished jobs whose results the settled plan already has on the branch (a crash came between
   * integrating them and forgetting them) are forgotten now.
   */
  async finished(plan: Plan): Promise<void> {
    const current = new Set(plan.pipelines.flatMap((p) => p.datums.filter((d) => d.action === 'skip').map((d) => d.key)));
    const done = (await this.q.queue.getJobs(['completed'], 0, -1)).filter((j) => j && j.data.dataset === this.target.dataset && current.has(j.data.key));
    if (done.length) await this.integrated(done.map((j) => j.data.key));
  }

  /** The results are on the branch: their jobs and handed-in run refs are no longer needed. */
  async integrated(keys: readonly string[]): Promise<void> {
    await Promise.allSettled(keys.map((k) => this.q.queue.remove(jobId(this.target.dataset, k))));
    await dropRunRefs(this.ds, keys);
  }
}
