import { Option, type Command } from 'commander';
import { parseCount } from '../options.js';

/** The command every Slurm array task runs (exec/slurm.ts writes the script): not for people. */
export function register(program: Command): void {
  program
    .command('slurm-task', { hidden: true })
    .description('run one Slurm array task of minipach (its batch of datums); started by the Slurm executor')
    .requiredOption('--home <url>', "the dataset's home: its origin's URL, or its path on a shared file system")
    .requiredOption('--tag <tag>', 'the array job, as the dispatcher named it')
    .addOption(new Option('--index <n>', 'the task (default: SLURM_ARRAY_TASK_ID)').argParser((v) => parseCount(v, '--index')))
    .option('--shared', 'the dataset is on a file system this node shares: work in it')
    .action(async (o: { home: string; tag: string; index?: number; shared?: boolean }) => {
      const index = o.index ?? Number(process.env['SLURM_ARRAY_TASK_ID']);
      if (!Number.isInteger(index) || index < 0) throw new (await import('../../core/errors.js')).UsageError('slurm-task: no task index (neither --index nor SLURM_ARRAY_TASK_ID)');
      const { runSlurmTask } = await import('../../exec/slurm-task.js');
      const label = `${process.env['SLURM_ARRAY_JOB_ID'] ?? 'local'}_${index}`;
      process.exitCode = await runSlurmTask({ home: o.home, tag: o.tag, index, shared: Boolean(o.shared), label });
    });
}
