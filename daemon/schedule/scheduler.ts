/**
 * Scheduling a dataset: plan at the branch head, decide the round (core/round.ts), carry it out (run the
 * computes, integrate the results, links and removals), and plan again until nothing is left to do
 * (downstream pipelines become runnable once upstream results land). The one place that acts on a plan.
 */
import { BranchMovedError } from '../core/errors.js';
import { datumLabel } from '../core/datum-label.js';
import type { DatumPlan } from '../core/plan.js';
import { decideRound, pendingSource, resultId, type DatumWork, type LinkWork, type Round } from '../core/round.js';
import type { Dataset } from '../adapters/dataset.js';
import { SnapshotReader } from '../adapters/snapshot-reader.js';
import type { ComputeOutcome } from '../exec/outcome.js';
import { writeDatumLog } from '../exec/logs.js';
import type { ExecutorName } from '../exec/executors.js';
import { LocalRunner, type ComputeRequest, type ComputeRunner } from '../exec/runner.js';
import { syncBranch } from '../results/branch.js';
import { Committer, type ComputedResult } from '../results/committer.js';
import { ResultStore } from '../results/index-store.js';
import { planAtHead, type PlanAtHead } from './plan-at-head.js';
import { outcomeOf, Outcomes, scheduleReport, type ScheduleReport, type Timings } from './report.js';

export interface ScheduleOptions {
  /** Compute jobs (native: batches) run at once by the default LocalRunner. @defaultValue 1 */
  readonly jobs?: number;
  /** How the default LocalRunner runs a datum's command. @defaultValue "native" */
  readonly executor?: ExecutorName;
  /** The most datums in one batch of the default LocalRunner. @defaultValue 50 */
  readonly batchSize?: number;
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
  const s = new Scheduling(ds, opts.runner ?? new LocalRunner(ds, { width: opts.jobs, executor: opts.executor, batchSize: opts.batchSize }), opts.onProgress);
  let moves = 0;
  let last: PlanAtHead;
  for (;;) {
    const syncWarning = await syncBranch(ds);
    if (syncWarning) s.warnings.push(syncWarning);
    const planStart = Date.now();
    last = await planAtHead(ds, s.reader, s.store);
    s.timings.lastPlanSeconds = (Date.now() - planStart) / 1000;
    s.timings.planSeconds += s.timings.lastPlanSeconds;
    const round = decideRound(last.plan, { failed: s.failedKeys, computed: new Set(s.fresh.keys()) });
    if (!round) break;
    try {
      await s.carryOut(round, last.head);
    } catch (e) {
      if (e instanceof BranchMovedError && ++moves <= MAX_BRANCH_MOVES) continue;
      throw e;
    }
    moves = 0;
  }
  await s.runner.finished?.(last.plan);
  return scheduleReport(ds, last, s.outcomes, s.warnings, started, s.timings);
}

type FreshResult = Omit<ComputedResult, 'plan'>;

/** The state of one schedule across its rounds. */
class Scheduling {
  readonly reader: SnapshotReader;
  readonly store: ResultStore;
  private readonly committer: Committer;
  readonly outcomes = new Outcomes();
  readonly failedKeys = new Set<string>();
  readonly warnings: string[] = [];
  readonly timings: Timings = { planSeconds: 0, lastPlanSeconds: 0, integrateSeconds: 0, integrations: 0, largestIntegration: { results: 0, seconds: 0 } };
  /**
   * Results computed but not yet on the branch, by resultId: when the branch moves under the committer,
   * the next plan says which of them still hold, and those are integrated without recomputing.
   */
  readonly fresh = new Map<string, FreshResult>();

  constructor(
    private readonly ds: Dataset,
    readonly runner: ComputeRunner,
    private readonly onProgress?: ScheduleOptions['onProgress'],
  ) {
    this.reader = SnapshotReader.of(ds);
    this.store = new ResultStore(ds);
    this.committer = new Committer(ds);
  }

  /**
   * Computes the round, then integrates it on top of `head`. While it computes, finished results are
   * integrated every INTEGRATE_EVERY_MS, each time on top of the previous integration: only this round's
   * own results land in between, and they cannot be inputs of datums of the same round (those wait for
   * them), so the plan stays valid. If somebody else moves the branch, partial integration stops and the
   * end of the round re-plans (BranchMovedError from the final integration).
   */
  async carryOut(round: Round, head: string): Promise<void> {
    const computes = [...round.run, ...round.reuse];
    const ofRound = () => computes.flatMap((w) => {
      const r = this.fresh.get(resultId(w.datum));
      return r ? [{ ...r, plan: w.datum }] : [];
    });
    let tip = head;
    const integrate = async (computed: ComputedResult[], links: readonly LinkWork[], removals: readonly DatumWork[]) => {
      tip = await this.integrate(tip, computed, links, removals);
    };
    let partial = true;
    let lastIntegration = Date.now();
    await this.compute(round.run, head, async (done, total) => {
      if (!partial || done >= total || Date.now() - lastIntegration < INTEGRATE_EVERY_MS) return;
      lastIntegration = Date.now();
      await integrate(ofRound(), [], []).catch((e) => {
        if (!(e instanceof BranchMovedError)) throw e;
        partial = false;
      });
    });
    for (const w of round.awaitSource) {
      const source = pendingSource(w)!;
      if (this.failedKeys.has(source.key)) this.outcomes.set(outcomeOf(w.datum, 'link', 'failed', { reason: `its source ${datumLabel(source.pipeline, source.name)} failed` }));
    }
    const computed = ofRound();
    if (computed.length || round.link.length || round.remove.length) await integrate(computed, round.link, round.remove);
  }

  /** Runs the datums on the runner; each outcome is logged and recorded as it comes. */
  private async compute(run: readonly DatumWork[], baseCommit: string, afterEach: (done: number, total: number) => Promise<void>): Promise<void> {
    let done = 0;
    if (run.length) this.onProgress?.({ done, total: run.length, datum: '' });
    const requests: ComputeRequest[] = run.map((w) => ({ plan: w.datum, spec: w.spec, transform: w.transform, baseCommit }));
    await this.runner.run(requests, async ({ plan: d, transform }, outcome) => {
      const log = await writeDatumLog(this.ds.stateDir, d.pipeline, d.name, outcome.log);
      this.onProgress?.({ done: ++done, total: run.length, datum: datumLabel(d.pipeline, d.name) });
      await this.settle(d, transform, outcome, log);
      await afterEach(done, run.length);
    });
  }

  private async settle(d: DatumPlan, transform: ComputedResult['transform'], outcome: ComputeOutcome, log: string): Promise<void> {
    if (outcome.ok) {
      this.fresh.set(resultId(d), { transform, commit: outcome.commit, outputs: outcome.outputs, record: outcome.record, resources: outcome.resources });
      this.outcomes.set(outcomeOf(d, 'compute', 'ok', { log }));
      return;
    }
    this.failedKeys.add(d.key);
    await this.store.recordFailure({ key: d.key, pipeline: d.pipeline, datum: d.name, exit: outcome.exit, reason: outcome.reason, stderrTail: outcome.stderrTail });
    this.outcomes.set(outcomeOf(d, 'compute', 'failed', { reason: outcome.reason, exit: outcome.exit, stderrTail: outcome.stderrTail, log }));
  }

  /** Puts results, links and removals on the branch on top of `tip`; returns the new tip. */
  private async integrate(tip: string, computed: ComputedResult[], links: readonly LinkWork[], removals: readonly DatumWork[]): Promise<string> {
    const started = Date.now();
    const head = await this.integrateNow(tip, computed, links, removals);
    const seconds = (Date.now() - started) / 1000;
    const results = computed.length + links.length + removals.length;
    this.timings.integrateSeconds += seconds;
    this.timings.integrations++;
    if (results > this.timings.largestIntegration.results) this.timings.largestIntegration = { results, seconds };
    return head;
  }

  private async integrateNow(tip: string, computed: ComputedResult[], links: readonly LinkWork[], removals: readonly DatumWork[]): Promise<string> {
    const integrated = await this.committer.integrate(
      tip,
      computed,
      links.map((l) => ({ plan: l.datum, transform: l.transform, source: l.source })),
      removals.map((r) => r.datum),
    );
    for (const c of computed) this.fresh.delete(resultId(c.plan));
    await this.runner.integrated?.(computed.map((c) => c.plan.key));
    if (integrated.worktreeWarning) this.warnings.push(integrated.worktreeWarning);
    if (integrated.shareWarning) this.warnings.push(integrated.shareWarning);
    await this.store.clearFailures(computed.map((c) => c.plan.key));
    const commitOf = (d: DatumPlan) => integrated.commits.get(datumLabel(d.pipeline, d.name));
    for (const c of computed) this.outcomes.committed(c.plan, commitOf(c.plan));
    for (const l of links) this.outcomes.set(outcomeOf(l.datum, 'link', 'ok', { commit: commitOf(l.datum) }));
    for (const r of removals) this.outcomes.set(outcomeOf(r.datum, 'remove', 'ok', { commit: commitOf(r.datum) }));
    return integrated.head;
  }
}
