/**
 * The overview of a served branch (core/overview.ts) from git: the plan at its head, the result index, the
 * times of the commits that recorded results. The daemon adds its queue's jobs and its runs; a report
 * (`minipach report`) has neither.
 */
import type { Dataset } from '../adapters/dataset.js';
import { overviewOf, type DatasetOverview, type LiveJob, type RunSummary } from '../core/overview.js';
import { planStateKey } from '../adapters/plan-memo.js';
import { planAtHead } from './plan-at-head.js';

export async function datasetOverview(ds: Dataset, name: string, live: Live = {}): Promise<DatasetOverview> {
  return overviewOf({ dataset: name, branch: ds.branch, ...(await datasetOverviewFromGit(ds)), ...live });
}

type Live = { jobs?: readonly LiveJob[]; runs?: readonly RunSummary[] };
type FromGit = Awaited<ReturnType<typeof datasetOverviewFromGit>>;

/** What an overview reads from git: the plan at the head, the result index, commit times, the price. */
export async function datasetOverviewFromGit(ds: Dataset) {
  const { plan, index } = await planAtHead(ds);
  const [commitTimes, price] = await Promise.all([ds.repo.commitTimes([...new Set(index.all.map((r) => r.commit))]), ds.repo.config('minipach.cpuHourCost')]);
  const cpuHourCost = price !== undefined && Number.isFinite(Number(price)) ? Number(price) : undefined;
  return { plan, index, commitTimes, cpuHourCost };
}

/**
 * The daemon's overviews of one branch. The part read from git is kept while what it is read from holds
 * (planStateKey: the head, the results, failures, content locations, config), so the dashboard's refreshes
 * on job events rebuild only the queue's overlay: a plan of 10^5 datums costs about a second.
 */
export class OverviewSource {
  private kept?: { readonly key: string; readonly value: Promise<FromGit> };

  constructor(
    private readonly ds: Dataset,
    private readonly name: string,
    private readonly read: (ds: Dataset) => Promise<FromGit> = datasetOverviewFromGit,
  ) {}

  async overview(live: Live): Promise<DatasetOverview> {
    const key = await planStateKey(this.ds);
    if (this.kept?.key !== key) {
      const value = this.read(this.ds);
      this.kept = { key, value };
      value.catch(() => this.kept?.value === value && (this.kept = undefined));
    }
    return overviewOf({ dataset: this.name, branch: this.ds.branch, ...(await this.kept.value), ...live });
  }
}
