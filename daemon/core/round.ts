/**
 * One scheduling round, decided before anything is done (Pachyderm's evaluate/apply): from the plan at the
 * branch head and what earlier rounds of this schedule left (failed datum keys, results computed but not
 * yet on the branch), which datums run, which are integrated, linked or removed, and which links wait for a
 * source computed in the same round. The scheduler only carries it out.
 */
import type { DatumPlan, Plan } from './plan.js';
import type { ResultRecord } from './result-index.js';
import type { TransformIdentity } from './identity.js';
import type { PipelineSpec } from './spec.js';

/** A datum of a ready pipeline, with what running or linking it needs. */
export interface DatumWork {
  readonly datum: DatumPlan;
  readonly spec: PipelineSpec;
  readonly transform: TransformIdentity;
}

export interface LinkWork extends DatumWork {
  readonly source: ResultRecord;
}

export interface Round {
  /** Datums to compute now. */
  readonly run: readonly DatumWork[];
  /** Datums whose result an earlier round computed (the branch moved before it landed): integrated as they are. */
  readonly reuse: readonly DatumWork[];
  /** Links whose source result is on the branch (or in a results ref): placed at the end of the round. */
  readonly link: readonly LinkWork[];
  /**
   * Links whose source is computed in this round: placed in a later round, once the source is on the
   * branch; if the source fails, they fail with it.
   */
  readonly awaitSource: readonly DatumWork[];
  readonly remove: readonly DatumWork[];
}

export interface RoundState {
  /** Datum keys that failed in this schedule: not tried again, nor linked from. */
  readonly failed: ReadonlySet<string>;
  /** `resultId`s of results computed in this schedule but not yet on the branch. */
  readonly computed: ReadonlySet<string>;
}

/** A computed result fits a datum of a later plan only where both its place and its key are the same. */
export const resultId = (d: Pick<DatumPlan, 'pipeline' | 'name' | 'key'>): string => `${d.pipeline}/${d.name}\0${d.key}`;

/** The key a link's result comes from: its source's, or (pending in this plan) the computing datum's. */
const sourceKey = (d: DatumPlan) => (d.source && 'pending' in d.source ? d.source.pending.key : d.key);

/** The round to carry out next, or undefined when the plan leaves nothing to do. */
export function decideRound(plan: Plan, state: RoundState): Round | undefined {
  const work = plan.pipelines.filter((p) => p.status === 'ready').flatMap((p) => p.datums.map((datum) => ({ datum, spec: p.spec!, transform: p.transform! })));
  const compute = work.filter((w) => w.datum.action === 'compute' && !state.failed.has(w.datum.key));
  const links = work.filter((w) => w.datum.action === 'link' && !state.failed.has(sourceKey(w.datum)));
  const remove = work.filter((w) => w.datum.action === 'remove');
  if (!compute.length && !links.length && !remove.length) return undefined;
  const pending = (w: DatumWork) => w.datum.source !== undefined && 'pending' in w.datum.source;
  return {
    run: compute.filter((w) => !state.computed.has(resultId(w.datum))),
    reuse: compute.filter((w) => state.computed.has(resultId(w.datum))),
    link: links.filter((w) => !pending(w)).map((w) => ({ ...w, source: w.datum.source as ResultRecord })),
    awaitSource: links.filter(pending),
    remove,
  };
}

/** The datum a waiting link's source is computed by. */
export function pendingSource(w: DatumWork): DatumPlan | undefined {
  const s = w.datum.source;
  return s && 'pending' in s ? s.pending : undefined;
}
