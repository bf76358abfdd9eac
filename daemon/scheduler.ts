/**
 * Scheduling a dataset: plan at the branch head, run what the plan says, integrate the results, and plan
 * again until nothing is left to do (downstream pipelines become runnable once upstream results land).
 * The plan is the pure core's; this module is the one place that acts on it.
 */
import { BranchMovedError, SpecError } from './errors.js';
import { syncBranch } from './branch.js';
import { Committer, type ComputedResult, type LinkRequest } from './committer.js';
import { planDataset, type Action, type DatumPlan, type Plan } from './core/plan.js';
import { withUnavailable, type ResultIndex, type ResultRecord } from './core/results.js';
import type { Dataset } from './dataset.js';
import { runCompute, writeLog, type ComputeOutcome } from './executor.js';
import type { PipelineSpec } from './core/spec.js';
import type { TransformIdentity } from './core/identity.js';
import { ResultStore, unavailableResults } from './result-store.js';
import { SnapshotReader } from './snapshot.js';
import { pool } from './pool.js';

export interface PlanAtHead {
  readonly plan: Plan;
  readonly head: string;
}

/**
 * Reads the branch head, its specs and the result index, and plans. No side effects beyond caches. When
 * the plan would link results whose content no repository has, it plans again with those results marked
 * unavailable, so they are computed instead (the plan itself stays a pure function of what it is given).
 */
export async function planAtHead(ds: Dataset, reader = new SnapshotReader(ds.repo), store = new ResultStore(ds)): Promise<PlanAtHead & { index: ResultIndex }> {
  const head = (await ds.repo.resolve(ds.ref))!;
  const snapshot = await reader.read(head);
  const [specs, index] = await Promise.all([reader.readSpecs(snapshot), store.load(head)]);
  const plan = planDataset({ snapshot, specs, index });
  const sources = plan.pipelines.flatMap((p) => p.datums).flatMap((d) => (d.action === 'link' && d.source && !('pending' in d.source) ? [d.source] : []));
  const unavailable = await unavailableResults(ds, sources, reader);
  if (!unavailable.size) return { plan, head, index };
  const checked = withUnavailable(index, unavailable);
  return { plan: planDataset({ snapshot, specs, index: checked }), head, index: checked };
}

export type DatumStatus = 'ok' | 'failed';

export interface DatumOutcome {
  readonly pipeline: string;
  readonly name: string;
  readonly key: string;
  /** What was done: the first action other than skip over the rounds, or the final plan's. */
  readonly action: Action;
  readonly status: DatumStatus;
  readonly reason: string;
  readonly commit?: string;
  readonly exit?: number;
  readonly stderrTail?: string;
  readonly log?: string;
}

export interface ScheduleReport {
  readonly dataset: string;
  readonly branch: string;
  readonly head: string;
  readonly seconds: number;
  readonly pipelines: readonly { name: string; status: string; error?: string; notes: readonly string[]; datums: DatumOutcome[] }[];
  readonly counts: { computed: number; linked: number; skipped: number; removed: number; failed: number; blocked: number };
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

/** One datum to compute, as the scheduler hands it to a runner. */
export interface ComputeRequest {
  readonly plan: DatumPlan;
  readonly spec: PipelineSpec;
  readonly transform: TransformIdentity;
  /** The commit the plan was made at: the job's inputs and code are read there. */
  readonly baseCommit: string;
}

/**
 * Where compute jobs run: in this process (LocalRunner) or on the queue (queue.ts). The scheduler, the
 * committer and everything they decide are the same either way.
 */
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

export interface ScheduleOptions {
  /** Compute jobs run at once by the default LocalRunner. @defaultValue 1 */
  readonly jobs?: number;
  /** Where compute jobs run. @defaultValue a LocalRunner of `jobs` width */
  readonly runner?: ComputeRunner;
  /** Called as compute jobs start and finish. */
  readonly onProgress?: (event: { done: number; total: number; datum: string }) => void;
}

/** While a round computes, its finished results are put on the branch at most this often. */
const INTEGRATE_EVERY_MS = 5000;

/** How many times in a row the branch may move under the committer before scheduling gives up. */
const MAX_BRANCH_MOVES = 50;

export async function schedule(ds: Dataset, opts: ScheduleOptions = {}): Promise<ScheduleReport> {
  const started = Date.now();
  const runner: ComputeRunner = opts.runner ?? new LocalRunner(ds, opts.jobs ?? 1);
  const reader = new SnapshotReader(ds.repo);
  const store = new ResultStore(ds);
  const committer = new Committer(ds);
  const outcomes = new Map<string, DatumOutcome>();
  const failedKeys = new Set<string>();
  const warnings: string[] = [];
  // Results computed but not yet on the branch, by datum and key: when the branch moves under the
  // committer, the next plan says which of them still hold, and those are integrated without recomputing.
  const fresh = new Map<string, FreshResult>();
  let moves = 0;
  let last: PlanAtHead;

  for (;;) {
    const syncWarning = await syncBranch(ds);
    if (syncWarning) warnings.push(syncWarning);
    last = await planAtHead(ds, reader, store);
    const { plan, head } = last;
    const ready = plan.pipelines.filter((p) => p.status === 'ready');
    const all = ready.flatMap((p) => p.datums.map((d) => ({ d, transform: p.transform!, spec: p.spec! })));
    const sourceKey = (d: DatumPlan) => (d.source && 'pending' in d.source ? d.source.pending.key : d.key);
    const computes = all.filter(({ d }) => d.action === 'compute' && !failedKeys.has(d.key));
    const links = all.filter(({ d }) => d.action === 'link' && !failedKeys.has(sourceKey(d)));
    const removals = all.filter(({ d }) => d.action === 'remove');
    if (!computes.length && !links.length && !removals.length) break;

    // The branch as this round left it: results are integrated while the round computes (at most every
    // INTEGRATE_EVERY_MS), each time on top of the previous integration. Only this round's own results
    // land in between, and they cannot be inputs of datums of the same round (those wait for them), so
    // the plan stays valid. If somebody else moves the branch, partial integration stops and the end of
    // the round re-plans.
    let tip = head;
    let partial = true;
    let lastIntegration = Date.now();
    const planOf = new Map(computes.map(({ d }) => [freshId(d), d]));
    const integrate = async (computed: ComputedResult[], links: LinkRequest[], removals: DatumPlan[]) => {
      const integrated = await committer.integrate(tip, computed, links, removals);
      tip = integrated.head;
      for (const c of computed) fresh.delete(freshId(c.plan));
      await runner.integrated?.(computed.map((c) => c.plan.key));
      if (integrated.worktreeWarning) warnings.push(integrated.worktreeWarning);
      if (integrated.shareWarning) warnings.push(integrated.shareWarning);
      await store.clearFailures(computed.map((c) => c.plan.key));
      for (const c of computed) outcomes.set(id(c.plan), { ...outcomes.get(id(c.plan))!, commit: integrated.commits.get(id(c.plan)) });
      for (const l of links) outcomes.set(id(l.plan), { pipeline: l.plan.pipeline, name: l.plan.name, key: l.plan.key, action: 'link', status: 'ok', reason: l.plan.reason, commit: integrated.commits.get(id(l.plan)) });
      for (const d of removals) outcomes.set(id(d), { pipeline: d.pipeline, name: d.name, key: d.key, action: 'remove', status: 'ok', reason: d.reason, commit: integrated.commits.get(id(d)) });
    };
    const freshOfRound = () => [...fresh].filter(([fid]) => planOf.has(fid)).map(([fid, r]) => ({ ...r, plan: planOf.get(fid)! }));

    // Compute. Links whose source is computed in this round are placed in the next round, once the
    // source's commit is on the branch and in the index (one extra plan, no extra computation).
    const toRun = computes.filter(({ d }) => !fresh.has(freshId(d)));
    let done = 0;
    if (toRun.length) opts.onProgress?.({ done, total: toRun.length, datum: '' });
    await runner.run(
      toRun.map(({ d, spec, transform }) => ({ plan: d, spec, transform, baseCommit: head })),
      async ({ plan: d, transform }, outcome) => {
        const log = await writeLog(ds, d.pipeline, d.name, outcome.log);
        done++;
        opts.onProgress?.({ done, total: toRun.length, datum: `${d.pipeline}/${d.name || '.'}` });
        if (outcome.ok) {
          fresh.set(freshId(d), { transform, commit: outcome.commit, outputs: outcome.outputs, record: outcome.record, resources: outcome.resources });
          outcomes.set(id(d), { pipeline: d.pipeline, name: d.name, key: d.key, action: 'compute', status: 'ok', reason: d.reason, log });
        } else {
          failedKeys.add(d.key);
          await store.recordFailure({ key: d.key, pipeline: d.pipeline, datum: d.name, exit: outcome.exit, reason: outcome.reason, stderrTail: outcome.stderrTail });
          outcomes.set(id(d), { pipeline: d.pipeline, name: d.name, key: d.key, action: 'compute', status: 'failed', reason: outcome.reason, exit: outcome.exit, stderrTail: outcome.stderrTail, log });
        }
        if (partial && done < toRun.length && Date.now() - lastIntegration >= INTEGRATE_EVERY_MS) {
          lastIntegration = Date.now();
          await integrate(freshOfRound(), [], []).catch((e) => {
            if (!(e instanceof BranchMovedError)) throw e;
            partial = false;
          });
        }
      },
    );
    const linkRequests: LinkRequest[] = [];
    for (const { d, transform } of links) {
      const src = d.source!;
      if ('pending' in src) {
        if (failedKeys.has(src.pending.key)) {
          outcomes.set(id(d), { pipeline: d.pipeline, name: d.name, key: d.key, action: 'link', status: 'failed', reason: `its source ${src.pending.pipeline}/${src.pending.name || '.'} failed` });
        }
        continue;
      }
      linkRequests.push({ plan: d, transform, source: src as ResultRecord });
    }
    const computed = freshOfRound();
    if (!computed.length && !linkRequests.length && !removals.length) continue;
    try {
      await integrate(computed, linkRequests, removals.map((r) => r.d));
    } catch (e) {
      if (e instanceof BranchMovedError && ++moves <= MAX_BRANCH_MOVES) continue;
      throw e;
    }
    moves = 0;
  }
  await runner.finished?.(last.plan);
  return report(ds, last, outcomes, warnings, started);
}

type FreshResult = Omit<ComputedResult, 'plan'>;

/** A result fits a datum of a later plan only where both its place and its key are the same. */
const freshId = (d: DatumPlan) => `${d.pipeline}/${d.name}\0${d.key}`;

const id = (d: { pipeline: string; name: string }) => `${d.pipeline}/${d.name}`;

function report(ds: Dataset, { plan, head }: PlanAtHead, outcomes: Map<string, DatumOutcome>, warnings: string[], started: number): ScheduleReport {
  const pipelines = plan.pipelines.map((p) => {
    const datums: DatumOutcome[] = [];
    const seen = new Set<string>();
    for (const d of p.datums) {
      seen.add(id(d));
      const o = outcomes.get(id(d));
      if (o && (d.action === 'skip' || o.status === 'failed')) datums.push(o);
      else datums.push({ pipeline: d.pipeline, name: d.name, key: d.key, action: d.action, status: d.action === 'blocked' ? 'failed' : 'ok', reason: d.reason });
    }
    // Datums removed in an earlier round no longer appear in the final plan.
    for (const o of outcomes.values()) if (o.pipeline === p.name && !seen.has(id(o))) datums.push(o);
    return { name: p.name, status: p.status, error: p.error?.message, notes: p.notes, datums };
  });
  const all = pipelines.flatMap((p) => p.datums);
  const count = (a: Action, s: DatumStatus = 'ok') => all.filter((d) => d.action === a && d.status === s).length;
  return {
    dataset: ds.dir,
    branch: ds.branch,
    head,
    seconds: (Date.now() - started) / 1000,
    pipelines,
    counts: {
      computed: count('compute'),
      linked: count('link'),
      skipped: count('skip'),
      removed: count('remove'),
      failed: all.filter((d) => d.status === 'failed' && d.action !== 'blocked').length,
      blocked: count('blocked', 'failed'),
    },
    errors: plan.pipelines.filter((p) => p.error).map((p) => (p.error instanceof SpecError ? p.error.message : String(p.error))),
    warnings,
  };
}
