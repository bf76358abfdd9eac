import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { out } from '../printers.js';

/**
 * `minipach cancel`: scancels the Slurm jobs minipach submitted for a dataset (or all of this user's
 * minipach jobs). Their datums end as cancelled, for good: a cancelled datum is not tried again by itself.
 */
export function register(program: Command): void {
  program
    .command('cancel')
    .description("cancel minipach's Slurm jobs of a dataset (scancel): their datums end as cancelled")
    .argument('[dataset]', 'dataset directory (its jobs are named minipach-<dataset name>-<pipeline>)', '.')
    .option('--name <name>', "the dataset's name in the jobs, when it is not the directory's (a daemon's configured name)")
    .option('--all', "every minipach job of this user, whatever its dataset")
    .action(async (dir: string, o: { name?: string; all?: boolean }) => {
      const { JOB_NAME_PREFIX, Slurm } = await import('../../adapters/slurm.js');
      const slurm = new Slurm({ squeue: process.env['MINIPACH_SQUEUE'], scancel: process.env['MINIPACH_SCANCEL'] });
      const dataset = (o.name ?? path.basename(path.resolve(dir))).replace(/[^A-Za-z0-9_.-]/g, '_');
      let tasks;
      try {
        tasks = await slurm.tasks();
      } catch (e) {
        throw new UsageError(`cannot list Slurm jobs: ${(e as Error).message}`);
      }
      const { hasEnded } = await import('../../core/slurm.js');
      const live = tasks.filter((t) => !hasEnded(t.state));
      const mine = live.filter((t) => o.all || t.name.startsWith(`${JOB_NAME_PREFIX}${dataset}-`));
      const jobs = [...new Set(mine.map((t) => t.job))];
      await slurm.cancel(jobs);
      out(jobs.length ? `cancelled ${jobs.length} Slurm job(s) (${mine.length} task(s)): ${jobs.join(', ')}` : 'no minipach Slurm job to cancel');
    });
}
