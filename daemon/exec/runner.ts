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
import type { ComputeOutcome } from './outcome.js';

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

/** Runs jobs here, `width` at a time, each in a scratch checkout of the dataset itself. */
export class LocalRunner implements ComputeRunner {
  constructor(private readonly ds: Dataset, private readonly width = 1) {}

  async run(requests: readonly ComputeRequest[], settled: (request: ComputeRequest, outcome: ComputeOutcome) => Promise<void>): Promise<void> {
    await pool(requests, this.width, async (r) => {
      const outcome = await runCompute(this.ds, { spec: r.spec, datum: r.plan.datum!, key: r.plan.key, outputDir: r.plan.outputDir, baseCommit: r.baseCommit });
      await settled(r, outcome);
    });
  }
}
