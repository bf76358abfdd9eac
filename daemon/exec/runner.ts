/**
 * The executor contract (redun's `submit` -> `done_job` / `reject_job`): the scheduler hands a runner the
 * datums to compute, and the runner calls `settled` as each ends, done or failed. Where they run (this
 * process, the queue's workers) changes nothing the scheduler, the committer or provenance decide.
 */
import type { Dataset } from '../adapters/dataset.js';
import type { DatumPlan, Plan } from '../core/plan.js';
import type { TransformIdentity } from '../core/identity.js';
import type { PipelineSpec } from '../core/spec.js';
import { pool } from '../core/pool.js';
import { runCompute } from './executor.js';
import { DEFAULT_BATCH_SIZE, type ExecutorName } from './executors.js';
import { runNativeBatch } from './native.js';
import type { ComputeJob, ComputeOutcome } from './outcome.js';

/** One datum to compute, as the scheduler hands it to a runner. */
export interface ComputeRequest {
  readonly plan: DatumPlan;
  readonly spec: PipelineSpec;
  readonly transform: TransformIdentity;
  /** The commit the plan was made at: the job's inputs and code are read there. */
  readonly baseCommit: string;
}

export interface ComputeRunner {
  /** Runs the requests; `settled` is called as each one ends (in any order). */
  run(requests: readonly ComputeRequest[], settled: (request: ComputeRequest, outcome: ComputeOutcome) => Promise<void>): Promise<void>;
  /** Called once results are on the branch, so the runner can forget their jobs. */
  integrated?(keys: readonly string[]): Promise<void>;
  /** Called with the settled plan at the end of a schedule (to forget results already on the branch). */
  finished?(plan: Plan): Promise<void>;
}


export interface LocalRunnerOptions {
  /** Batches (native) or datums (datalad) run at once. @defaultValue 1 */
  readonly width?: number;
  /** @defaultValue "native" */
  readonly executor?: ExecutorName;
  /** The most datums a native batch (one scratch checkout) holds. @defaultValue 50 */
  readonly batchSize?: number;
}


export const jobOf = (r: ComputeRequest): ComputeJob => ({ spec: r.spec, datum: r.plan.datum!, key: r.plan.key, outputDir: r.plan.outputDir, baseCommit: r.baseCommit });

/**
 * Splits requests into batches of one base commit, at most `size` each, and into at least `width` of them
 * when there are enough, so that `width` batches can run at once.
 */
export function batches<T extends { baseCommit: string }>(items: readonly T[], size: number, width: number): T[][] {
  const byBase = new Map<string, T[]>();
  for (const r of items) byBase.set(r.baseCommit, [...(byBase.get(r.baseCommit) ?? []), r]);
  const out: T[][] = [];
  for (const group of byBase.values()) {
    const n = Math.max(1, Math.min(size, Math.ceil(group.length / Math.max(1, width))));
    for (let i = 0; i < group.length; i += n) out.push(group.slice(i, i + n));
  }
  return out;
}

/** Runs jobs here, each batch (or datum, with datalad) in a scratch checkout of the dataset itself. */
export class LocalRunner implements ComputeRunner {
  private readonly width: number;
  private readonly executor: ExecutorName;
  private readonly batchSize: number;

  constructor(private readonly ds: Dataset, opts: LocalRunnerOptions = {}) {
    this.width = opts.width ?? 1;
    this.executor = opts.executor ?? 'native';
    this.batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  }

  async run(requests: readonly ComputeRequest[], settled: (request: ComputeRequest, outcome: ComputeOutcome) => Promise<void>): Promise<void> {
    if (this.executor === 'slurm') throw new Error('the slurm executor runs through a SlurmRunner, not here');
    if (this.executor === 'datalad') {
      await pool(requests, this.width, async (r) => settled(r, await runCompute(this.ds, jobOf(r))));
      return;
    }
    await pool(batches(requests, this.batchSize, this.width), this.width, async (batch) => {
      const byJob = new Map(batch.map((r) => [jobOf(r), r] as const));
      await runNativeBatch(this.ds, batch[0]!.baseCommit, [...byJob.keys()], (job, outcome) => settled(byJob.get(job)!, outcome));
    });
  }
}
