/**
 * The minipach command line: one file per command under commands/, each registering itself. Exit codes:
 * 0 all good, 1 a datum failed, 2 usage error or invalid spec (valid pipelines still run).
 *
 * Commands that need the daemon, the worker, Redis or the watcher import those modules when they run:
 * loading them up front made every `plan` and `schedule` half a second slower.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../adapters/install-dir.js';
import { MinipachError, SpecError, UsageError } from '../core/errors.js';
import * as cancel from './commands/cancel.js';
import * as containers from './commands/containers.js';
import * as cost from './commands/cost.js';
import * as datums from './commands/datums.js';
import * as explain from './commands/explain.js';
import * as hooks from './commands/hooks.js';
import * as jobs from './commands/jobs.js';
import * as logs from './commands/logs.js';
import * as plan from './commands/plan.js';
import * as reindex from './commands/reindex.js';
import * as report from './commands/report.js';
import * as retry from './commands/retry.js';
import * as schedule from './commands/schedule.js';
import * as share from './commands/share.js';
import * as slurmTask from './commands/slurm-task.js';
import * as status from './commands/status.js';
import * as storage from './commands/storage.js';
import * as up from './commands/up.js';
import * as watch from './commands/watch.js';
import * as worker from './commands/worker.js';

export { VERSION };

/** In the order `minipach --help` lists them. */
const COMMANDS = [plan, explain, cost, report, reindex, share, containers, storage, schedule, up, worker, hooks, watch, status, jobs, logs, retry, cancel, datums, slurmTask];

export function buildProgram(): Command {
  const program = new Command('minipach')
    .description('Pachyderm-style data-driven pipelines for DataLad datasets')
    .version(VERSION, '-V, --version', 'print the version of minipach')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const c of COMMANDS) c.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // Output piped into `head` and cut short: stop quietly, as other command-line tools do.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError || e instanceof SpecError) {
      process.stderr.write(`minipach: ${e.message}\n`);
      return 2;
    }
    if (e instanceof MinipachError) {
      process.stderr.write(`minipach: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
