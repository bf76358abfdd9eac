/**
 * The plan of a branch as it is now: its head's snapshot and specs, and the result index, given to the pure
 * planner. Reads only; its one side effect is caches.
 */
import type { Dataset } from '../adapters/dataset.js';
import { SnapshotReader } from '../adapters/snapshot-reader.js';
import { memoOfPlan } from '../core/key-memo.js';
import { planDataset, type Plan } from '../core/plan.js';
import { withUnavailable, type ResultIndex } from '../core/result-index.js';
import { ResultStore, unavailableResults } from '../results/index-store.js';

export interface PlanAtHead {
  readonly plan: Plan;
  readonly head: string;
  readonly index: ResultIndex;
  /** How the head's snapshot was had (read whole, cached, or a cached one plus a diff) and how many datum keys were hashed. */
  readonly planning: { readonly snapshot: string; readonly hashed: number };
}

/**
 * When the plan would link results whose content no repository has, it plans again with those results
 * marked unavailable, so they are computed instead (the plan itself stays a pure function of its inputs).
 */
export async function planAtHead(ds: Dataset, reader = SnapshotReader.of(ds), store = new ResultStore(ds), at?: string): Promise<PlanAtHead> {
  // `at`: the head as the caller read it (the kept plan's key names it); else the branch as it is now.
  const head = at ?? (await ds.repo.resolve(ds.ref))!;
  // The index is read from the results refs and the history, the snapshot from the tree: side by side.
  const [snapshot, index] = await Promise.all([reader.read(head), store.load(head)]);
  const [specs, memo] = await Promise.all([reader.readSpecs(snapshot), reader.keyMemo(head)]);
  const containers = await reader.readContainers(snapshot, specs);
  const plan = planDataset({ snapshot, specs, index, memo, containers });
  // Kept for this commit when it has none yet, or when keys were hashed (new datums, changed inputs).
  if (plan.hashed || memo?.commit !== head) await reader.keepKeys(head, memoOfPlan(plan.pipelines, snapshot.byPath));
  const sources = plan.pipelines.flatMap((p) => p.datums).flatMap((d) => (d.action === 'link' && d.source && !('pending' in d.source) ? [d.source] : []));
  const unavailable = await unavailableResults(ds, sources, reader);
  const planning = { snapshot: reader.howRead?.commit === head ? reader.howRead.source : 'read', hashed: plan.hashed };
  if (!unavailable.size) return { plan, head, index, planning };
  const checked = withUnavailable(index, unavailable);
  return { plan: planDataset({ snapshot, specs, index: checked, memo, containers }), head, index: checked, planning };
}
