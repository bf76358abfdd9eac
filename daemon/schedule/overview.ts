/**
 * The overview of a served branch (core/overview.ts) from git: the plan at its head, the result index, the
 * times of the commits that recorded results. The daemon adds its queue's jobs and its runs; a report
 * (`minipach report`) has neither.
 */
import type { Dataset } from '../adapters/dataset.js';
import { overviewOf, type DatasetOverview, type LiveJob, type RunSummary } from '../core/overview.js';
import { planAtHead } from './plan-at-head.js';

export async function datasetOverview(ds: Dataset, name: string, live: { jobs?: readonly LiveJob[]; runs?: readonly RunSummary[] } = {}): Promise<DatasetOverview> {
  const { plan, index } = await planAtHead(ds);
  const [commitTimes, price] = await Promise.all([ds.repo.commitTimes([...new Set(index.all.map((r) => r.commit))]), ds.repo.config('minipach.cpuHourCost')]);
  const cpuHourCost = price !== undefined && Number.isFinite(Number(price)) ? Number(price) : undefined;
  return overviewOf({ dataset: name, branch: ds.branch, plan, index, commitTimes, cpuHourCost, ...live });
}
