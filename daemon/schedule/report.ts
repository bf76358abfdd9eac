/** What a schedule did, datum by datum: the report `minipach schedule` prints and the daemon keeps. */
import type { Dataset } from '../adapters/dataset.js';
import { SpecError } from '../core/errors.js';
import { datumLabel } from '../core/datum-label.js';
import type { Action, DatumPlan } from '../core/plan.js';
import type { PlanAtHead } from './plan-at-head.js';

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
  /** Where the time went besides computing: planning (all plans, and the last one, after the last integration) and integrating. */
  readonly timings?: Timings;
  readonly pipelines: readonly { name: string; status: string; error?: string; notes: readonly string[]; datums: DatumOutcome[] }[];
  readonly counts: { computed: number; linked: number; skipped: number; removed: number; failed: number; blocked: number };
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

export interface Timings {
  planSeconds: number;
  lastPlanSeconds: number;
  integrateSeconds: number;
  integrations: number;
  /** The integration of the most results at once. */
  largestIntegration: { results: number; seconds: number };
}

/** A datum's outcome, from its plan entry and what became of it. */
export function outcomeOf(d: DatumPlan, action: Action, status: DatumStatus, extra: Partial<DatumOutcome> = {}): DatumOutcome {
  return { pipeline: d.pipeline, name: d.name, key: d.key, action, status, reason: d.reason, ...extra };
}

/** The outcomes of a schedule, keyed by datum label. */
export class Outcomes {
  private readonly byDatum = new Map<string, DatumOutcome>();

  set(o: DatumOutcome): void {
    this.byDatum.set(datumLabel(o.pipeline, o.name), o);
  }

  get(d: { pipeline: string; name: string }): DatumOutcome | undefined {
    return this.byDatum.get(datumLabel(d.pipeline, d.name));
  }

  /** Adds what the datum's commit is, once it is on the branch. */
  committed(d: { pipeline: string; name: string }, commit: string | undefined): void {
    const o = this.get(d);
    if (o) this.set({ ...o, commit });
  }

  values(): IterableIterator<DatumOutcome> {
    return this.byDatum.values();
  }
}

export function scheduleReport(ds: Dataset, { plan, head }: PlanAtHead, outcomes: Outcomes, warnings: readonly string[], started: number, timings?: Timings): ScheduleReport {
  const pipelines = plan.pipelines.map((p) => {
    const datums: DatumOutcome[] = [];
    const seen = new Set<string>();
    for (const d of p.datums) {
      seen.add(datumLabel(d.pipeline, d.name));
      const o = outcomes.get(d);
      if (o && (d.action === 'skip' || o.status === 'failed')) datums.push(o);
      else datums.push(outcomeOf(d, d.action, d.action === 'blocked' ? 'failed' : 'ok'));
    }
    // Datums removed in an earlier round no longer appear in the final plan.
    for (const o of outcomes.values()) if (o.pipeline === p.name && !seen.has(datumLabel(o.pipeline, o.name))) datums.push(o);
    return { name: p.name, status: p.status, error: p.error?.message, notes: p.notes, datums };
  });
  const all = pipelines.flatMap((p) => p.datums);
  const count = (a: Action, s: DatumStatus = 'ok') => all.filter((d) => d.action === a && d.status === s).length;
  return {
    dataset: ds.dir,
    branch: ds.branch,
    head,
    seconds: (Date.now() - started) / 1000,
    timings,
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
    warnings: [...warnings],
  };
}
