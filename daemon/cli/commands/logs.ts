import type { Command } from 'commander';
import { daemonClient, findDaemon, openDataset } from '../options.js';
import { datumLabel, parseDatumLabel } from '../../core/datum-label.js';
import { UsageError } from '../../core/errors.js';
import { out } from '../printers.js';

export function register(program: Command): void {
  program
    .command('logs')
    .description('stdout and stderr of the last try of a datum')
    .argument('<datum>', '<pipeline>/<datum> (<pipeline>/. for a single-datum pipeline)')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--json', 'print JSON')
    .action(async (datum: string, dir: string, o: { json?: boolean }) => {
      const ds = await openDataset(dir);
      const reg = await findDaemon(ds);
      let result: { datum: string; source: string; log: string };
      if (reg) result = await (await daemonClient(reg.url, reg.token)).logs({ dir: ds.dir, branch: ds.branch }, datum);
      else {
        const { pipeline, name } = parseDatumLabel(datum);
        const found = await (await import('../../exec/logs.js')).readDatumLog(ds.stateDir, pipeline, name);
        if (!found) throw new UsageError(`no log for ${datumLabel(pipeline, name)}: it has not run in ${ds.dir}`);
        result = { datum, source: found.file, log: found.log };
      }
      if (o.json) out(JSON.stringify(result, null, 2));
      else process.stdout.write(result.log.endsWith('\n') ? result.log : result.log + '\n');
    });
}
