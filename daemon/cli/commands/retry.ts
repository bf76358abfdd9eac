import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { needDaemon } from '../options.js';
import { out } from '../printers.js';

export function register(program: Command): void {
  program
    .command('retry')
    .description('run failed datums again (their tries start over)')
    .argument('[datum]', '<pipeline>/<datum>')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--failed', 'every failed datum of the dataset')
    .option('--json', 'print JSON')
    .action(async (datum: string | undefined, dir: string, o: { failed?: boolean; json?: boolean }) => {
      if (!datum && !o.failed) throw new UsageError('say which datum to retry, or --failed for all of them');
      const { client, ds } = await needDaemon(dir);
      const r = await client.retry({ dir: ds.dir, branch: ds.branch }, { datum, failed: o.failed });
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(r.retried.length ? `retrying ${r.retried.join(', ')} (run ${r.run.id})` : `no failed job matched; scheduled run ${r.run.id} anyway`);
    });
}
