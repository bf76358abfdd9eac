/**
 * The plan of a branch as it is now: its head's snapshot and specs, and the result index, given to the pure
 * planner. Reads only; its one side effect is caches.
 */
import type { Dataset } from '../adapters/dataset.js';
import { SnapshotReader } from '../adapters/snapshot-reader.js';
import { planDataset, type Plan } from '../core/plan.js';
import { withUnavailable, type ResultIndex } from '../core/result-index.js';
import { ResultStore, unavailableResults } from '../results/index-store.js';

export interface PlanAtHead {
  readonly plan: Plan;
  readonly head: string;
  readonly index: ResultIndex;
}

/**
 * When the plan would link results whose content no repository has, it plans again with those results
 * marked unavailable, so they are computed instead (the plan itself stays a pure function of its inputs).
 */
export async function planAtHead(ds: Dataset, reader = new SnapshotReader(ds.repo), store = new ResultStore(ds)): Promise<PlanAtHead> {
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
