import { Option, type Command } from 'commander';
import type { Dataset } from '../../adapters/dataset.js';
import { batchSizeOption, daemonClient, executorOption, findDaemon, jobsOption, openDataset, parsePositive } from '../options.js';
import { MinipachError, UsageError } from '../../core/errors.js';
import type { ScheduleReport } from '../../schedule/report.js';
import type { Registration } from '../../server/registration.js';
import type { ExecutorName } from '../../exec/executors.js';
import { out, printReport } from '../printers.js';

interface ScheduleFlags {
  branch?: string;
  jobs: number;
  executor?: ExecutorName;
  batchSize?: number;
  sharedFs?: boolean;
  maxRunning?: number;
  maxArray?: number;
  maxQueued?: number;
  wait: boolean;
  local?: boolean;
  json?: boolean;
}

type Progress = (p: { done: number; total: number; datum: string }) => void;

export function register(program: Command): void {
  program
    .command('schedule')
    .description('plan, run the datums that need it, and commit their results to the branch (through the daemon when one serves the dataset)')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch that receives results (default: the checked-out branch)')
    .addOption(jobsOption())
    .addOption(executorOption())
    .addOption(batchSizeOption())
    .option('--shared-fs', 'slurm: the dataset is at this same path on the nodes; tasks work in it (default: they clone its origin)')
    .addOption(new Option('--max-running <n>', "slurm: an array's tasks running at once (its % limit)").argParser((v) => parsePositive(v, '--max-running')))
    .addOption(new Option('--max-array <n>', 'slurm: the most tasks of one array job').argParser((v) => parsePositive(v, '--max-array')))
    .addOption(new Option('--max-queued <n>', "slurm: the most of minipach's tasks queued or running at once").argParser((v) => parsePositive(v, '--max-queued')))
    .option('--no-wait', 'with a daemon: return once the jobs are queued')
    .option('--local', 'compute in this process even when a daemon serves the dataset')
    .option('--json', 'print a JSON report')
    .action(async (dir: string, o: ScheduleFlags) => {
      const ds = await openDataset(dir, o.branch);
      const cliProgress = !o.json && process.stderr.isTTY ? (await import('cli-progress')).default : undefined;
      const bar = cliProgress ? new cliProgress.SingleBar({ format: 'computing {bar} {value}/{total} {datum}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
      let started = false;
      const progress: Progress = ({ done, total, datum }) => {
        if (!bar || !total) return;
        if (!started || done === 0) (bar.start(total, done, { datum }), (started = true));
        else bar.update(done, { datum });
        if (done === total) (bar.stop(), (started = false));
      };
      const daemon = o.local ? undefined : await findDaemon(ds);
      if (daemon && (o.executor || o.batchSize || o.sharedFs)) throw new UsageError(`a daemon serves ${ds.dir} with the executor its configuration names; to run here with --executor/--batch-size, add --local`);
      const report = daemon ? await throughDaemon(ds, daemon, o, progress) : await here(ds, o, progress);
      bar?.stop();
      if (!report) return;
      if (o.json) out(JSON.stringify(report, null, 2));
      else printReport(report);
      process.exitCode = report.errors.length ? 2 : report.counts.failed || report.counts.blocked ? 1 : 0;
    });
}

/** One code path: the daemon runs the same schedule() with its queue as the runner. Undefined: --no-wait returned early. */
async function throughDaemon(ds: Dataset, daemon: Registration, o: ScheduleFlags, progress: Progress): Promise<ScheduleReport | undefined> {
  const client = await daemonClient(daemon.url, daemon.token);
  const queued = await client.schedule({ dir: ds.dir, branch: ds.branch });
  const run = await client.waitFor(queued.id, { untilEnqueued: !o.wait, onProgress: (r) => progress({ ...r.progress, datum: '' }) });
  if (!o.wait && run.state !== 'done' && run.state !== 'failed') {
    if (o.json) out(JSON.stringify(run, null, 2));
    else if (run.state === 'queued') out(`run ${run.id} on ${daemon.url} is queued behind the schedule in progress; follow it with: minipach status`);
    else out(`run ${run.id} on ${daemon.url}: ${run.progress.total} datum job(s) queued; follow it with: minipach status`);
    return undefined;
  }
  if (run.state === 'failed' || !run.report) throw new MinipachError(`the daemon's schedule failed: ${run.error ?? 'no report'}`);
  return run.report;
}

/**
 * In this process. A plain clone: results come from and go to the remotes' results refs around the run (a
 * daemon with a `remote` moves them with the branch itself, see results/branch.ts and the committer).
 */
async function here(ds: Dataset, o: ScheduleFlags, progress: Progress): Promise<ScheduleReport> {
  const { fetchAllSharedResults, sharingReminder } = await import('../../results/shared-ref.js');
  const fetchProblems = await fetchAllSharedResults(ds);
  const runner = o.executor === 'slurm' ? await slurmRunner(ds, o) : undefined;
  // Loaded here: the scheduler brings the committer and the executors, which `--help` need not load.
  const { schedule } = await import('../../schedule/scheduler.js');
  const report = await schedule(ds, { jobs: o.jobs, executor: o.executor, batchSize: o.batchSize, onProgress: progress, runner }).finally(() => runner?.stopOnSignals());
  const reminder = await sharingReminder(ds);
  return { ...report, warnings: [...fetchProblems, ...report.warnings, ...(reminder ? [reminder] : [])] };
}

/**
 * The Slurm executor for this schedule: tasks clone the dataset's origin (its remote's URL) unless the
 * dataset is on a shared file system. Interrupted (Ctrl-C, SIGTERM), the run scancels its jobs first.
 */
async function slurmRunner(ds: Dataset, o: ScheduleFlags) {
  const { DEFAULT_SLURM, SlurmRunner } = await import('../../exec/slurm-runner.js');
  let home = ds.dir;
  if (!o.sharedFs) {
    // The remote as workers see it (a relative path made absolute): what the tasks clone.
    const remote = ds.remote ?? 'origin';
    const location = await (await import('../../results/branch.js')).remoteLocation({ ...ds, remote });
    if (!location) throw new UsageError(`--executor slurm: the tasks clone the dataset from its origin, and ${ds.dir} has no remote "${remote}"; add one the nodes can reach (git remote add origin <url>), or give --shared-fs if the nodes see ${ds.dir} at this path`);
    home = location.url;
  }
  const settings = {
    ...DEFAULT_SLURM,
    batchSize: o.batchSize ?? DEFAULT_SLURM.batchSize,
    maxRunning: o.maxRunning,
    maxArray: o.maxArray ?? DEFAULT_SLURM.maxArray,
    maxQueued: o.maxQueued ?? DEFAULT_SLURM.maxQueued,
    sharedFs: Boolean(o.sharedFs),
    clients: { sbatch: process.env['MINIPACH_SBATCH'] },
  };
  const runner = new SlurmRunner(ds, home, settings, (m) => process.stderr.write(`${m}\n`));
  const cancel = (signal: NodeJS.Signals) => {
    process.stderr.write(`minipach: ${signal}: cancelling the Slurm jobs of this run\n`);
    void runner.arrays.cancel().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', cancel);
  process.once('SIGTERM', cancel);
  return Object.assign(runner, {
    stopOnSignals() {
      process.off('SIGINT', cancel);
      process.off('SIGTERM', cancel);
    },
  });
}
