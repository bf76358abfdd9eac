import path from 'node:path';
import type { Dataset } from '../adapters/dataset.js';
import { dropRunRefs } from '../results/branch.js';
import type { SlurmSettings } from './executors.js';
import type { ComputeJob, ComputeOutcome } from './outcome.js';
import { jobOf, type ComputeRequest, type ComputeRunner } from './runner.js';
import { SlurmArrays } from './slurm.js';

export { DEFAULT_SLURM } from './executors.js';

/**
 * The Slurm executor of `minipach schedule --executor slurm`: the round's datums go to Slurm in batches of
 * one pipeline, and a datum that fails is submitted again while it has tries (datum_tries), as a queue job
 * would be. `home`: the origin's URL the tasks clone from, or the dataset's own path on a shared file system.
 */
export class SlurmRunner implements ComputeRunner {
  readonly arrays: SlurmArrays;

  constructor(private readonly ds: Dataset, private readonly home: string, settings: SlurmSettings, private readonly log: (m: string) => void = () => undefined) {
    this.arrays = new SlurmArrays(settings, log);
  }

  async run(requests: readonly ComputeRequest[], settled: (request: ComputeRequest, outcome: ComputeOutcome) => Promise<void>): Promise<void> {
    const requestOf = new Map<ComputeJob, ComputeRequest>();
    const tries = new Map<string, number>();
    const running: Promise<void>[] = [];
    const dataset = path.basename(this.ds.dir);
    const submit = (jobs: readonly ComputeJob[]) => {
      const groups = new Map<string, ComputeJob[]>();
      for (const j of jobs) groups.set(`${j.baseCommit}\0${j.spec.name}`, [...(groups.get(`${j.baseCommit}\0${j.spec.name}`) ?? []), j]);
      for (const group of groups.values()) {
        running.push(
          this.arrays.runBatch(this.ds, this.home, group[0]!.baseCommit, dataset, group, async (job, outcome) => {
            const n = (tries.get(job.key) ?? 0) + 1;
            tries.set(job.key, n);
            if (!outcome.ok && !outcome.permanent && n < job.spec.datumTries) {
              // Not awaited here: the dispatcher settles datums in its loop, which the retry needs.
              this.log(`${job.spec.name}/${job.datum.name}: try ${n} failed (${outcome.reason}); trying again`);
              submit([job]);
              return;
            }
            await settled(requestOf.get(job)!, !outcome.ok && n > 1 ? { ...outcome, reason: `${outcome.reason} (after ${n} tries)` } : outcome);
          }),
        );
      }
    };
    submit(
      requests.map((r) => {
        const job = jobOf(r);
        requestOf.set(job, r);
        return job;
      }),
    );
    // Retries add to `running` as they are submitted.
    for (let i = 0; i < running.length; i++) await running[i];
  }

  /**
   * At the end of a schedule: the home's git-annex branch, so that this dataset knows the outputs' content
   * is there (the tasks copied it) and `datalad get` finds it.
   */
  async finished(): Promise<void> {
    if (this.home === this.ds.dir) return;
    const remote = this.ds.remote ?? 'origin';
    await this.ds.repo.fetch(remote, [`+refs/heads/git-annex:refs/remotes/${remote}/git-annex`], { noTags: true });
  }

  /** The results are on the branch: their handed-in run refs are no longer needed, here or in the home. */
  async integrated(keys: readonly string[]): Promise<void> {
    await dropRunRefs(this.ds, keys, this.home === this.ds.dir ? undefined : this.home).catch(() => undefined);
  }
}
