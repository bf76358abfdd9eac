import { Option, type Command } from 'commander';
import { executorOption, openDataset, parseCount, parsePositive, untilSignal } from '../options.js';
import { UsageError } from '../../core/errors.js';
import { out } from '../printers.js';
import type { ExecutorName } from '../../exec/executors.js';

interface UpFlags {
  config?: string;
  executor?: ExecutorName;
  branch?: string;
  remote?: string;
  port?: number;
  workers?: number;
  concurrency?: number;
}

export function register(program: Command): void {
  program
    .command('up')
    .description('run the daemon: queue, scheduler, committer and HTTP server (a private Redis unless REDIS_URL is set)')
    .argument('[dataset]', 'serve this dataset (instead of --config)')
    .option('--config <file>', 'configuration file (YAML)')
    .option('--branch <name>', 'with [dataset]: the branch to follow (default: the checked-out one)')
    .option('--remote <name>', 'with [dataset]: the git remote to fetch from and push results to')
    .addOption(executorOption())
    .addOption(new Option('--port <n>', 'HTTP port (0: any free one)').argParser((v) => parseCount(v, '--port')))
    .addOption(new Option('--workers <n>', 'workers inside the daemon (0: only external ones)').argParser((v) => parseCount(v, '--workers')))
    .addOption(new Option('--concurrency <n>', 'jobs each in-process worker runs at once').argParser((v) => parsePositive(v, '--concurrency')))
    .action(async (dir: string | undefined, o: UpFlags) => {
      if (!o.config && !dir) dir = '.';
      if (o.config && dir) throw new UsageError('give either a dataset directory or --config, not both');
      // The daemon's modules (BullMQ, express...) load only here: `plan` and `schedule` stay quick to start.
      const { loadConfigFile, parseConfig } = await import('../../server/config.js');
      if (o.executor && o.config) throw new UsageError('with --config, set the executor per dataset in the file (executor: native | datalad)');
      const raw = dir ? { datasets: [{ path: (await openDataset(dir, o.branch)).dir, branches: o.branch ? [o.branch] : undefined, remote: o.remote, executor: o.executor }] } : undefined;
      let config = o.config ? await loadConfigFile(o.config) : parseConfig('command line', raw);
      config = { ...config, http: { ...config.http, port: o.port ?? config.http.port }, workers: o.workers ?? config.workers, concurrency: o.concurrency ?? config.concurrency };
      const { Daemon } = await import('../../server/daemon.js');
      const daemon = await Daemon.start(config);
      out(`minipach daemon at ${daemon.url} serving ${daemon.followers.map((f) => `${f.name}:${f.ds.branch}`).join(', ')} (redis ${daemon.redisUrl})`);
      await untilSignal(async (signal) => {
        process.stderr.write(`minipach: ${signal}: stopping (finishing the integration in progress)\n`);
        await daemon.stop();
      });
      process.exit(0);
    });
}
