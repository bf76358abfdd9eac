import { Option, type Command } from 'commander';
import type { Dataset } from '../../adapters/dataset.js';
import { daemonClient, findDaemon, jobsOption, openDataset, parsePositive, untilSignal } from '../options.js';
import { out } from '../printers.js';

interface WatchFlags {
  quietMs: number;
  local?: boolean;
  jobs: number;
}

export function register(program: Command): void {
  program
    .command('watch')
    .description("save files written into a dataset's working tree after a quiet period, then schedule")
    .argument('[dataset]', 'dataset directory', '.')
    .addOption(new Option('--quiet-ms <n>', 'milliseconds without a change before saving').argParser((v) => parsePositive(v, '--quiet-ms')).default(2000))
    .option('--local', 'schedule in this process even when a daemon serves the dataset')
    .addOption(jobsOption())
    .action(async (dir: string, o: WatchFlags) => {
      const ds = await openDataset(dir);
      const { watchDataset, WatchLimitError } = await import('../../sources/watch.js');
      let failure: Error | undefined;
      let stop: () => void = () => undefined;
      const stopped = new Promise<void>((res) => (stop = res));
      const w = watchDataset(ds, {
        quietMs: o.quietMs,
        schedule: () => scheduleAfterSave(ds, o),
        onCycle: (c) => {
          const list = c.paths.slice(0, 10).join(', ') + (c.paths.length > 10 ? ', ...' : '');
          out(c.commit ? `saved ${c.paths.length} path(s) as ${c.commit.slice(0, 12)}: ${list}` : `nothing new to save in ${c.paths.length} changed path(s)`);
        },
        onError: (e) => {
          if (!(e instanceof WatchLimitError)) return void process.stderr.write(`minipach watch: ${e.message}\n`);
          failure = e;
          stop();
        },
      });
      await w.ready;
      out(`watching ${ds.dir} (saving ${o.quietMs} ms after the last change)`);
      await Promise.race([untilSignal(async () => undefined), stopped]);
      await w.close();
      if (failure) throw failure;
      process.exit(0);
    });
}

/** After a save: through the daemon serving the dataset, else here. */
async function scheduleAfterSave(ds: Dataset, o: WatchFlags): Promise<void> {
  const daemon = o.local ? undefined : await findDaemon(ds);
  if (daemon) {
    await (await daemonClient(daemon.url, daemon.token)).schedule({ dir: ds.dir, branch: ds.branch }, 'minipach watch');
    return;
  }
  const { schedule } = await import('../../schedule/scheduler.js');
  const c = (await schedule(ds, { jobs: o.jobs })).counts;
  out(`scheduled: ${c.computed} computed, ${c.linked} linked, ${c.skipped} skipped, ${c.removed} removed, ${c.failed} failed`);
}
