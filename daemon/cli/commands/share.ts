import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { openDatasetReadOnly } from '../options.js';
import { out } from '../printers.js';

export function register(program: Command): void {
  program
    .command('share')
    .description("fetch the remotes' shared results (refs/minipach/results), merge them with this clone's, and push the union back")
    .argument('[dataset]', 'dataset directory', '.')
    .option('--remote <name>', 'only this remote (default: every git remote)')
    .action(async (dir: string, o: { remote?: string }) => {
      const { pushSharedResults, RESULTS_REF } = await import('../../results/shared-ref.js');
      const ds = await openDatasetReadOnly(dir);
      const remotes = o.remote ? [o.remote] : await ds.repo.remotes();
      if (!remotes.length) throw new UsageError(`${ds.dir} has no git remote to share results with`);
      let failed = 0;
      for (const r of remotes) {
        const problem = await pushSharedResults(ds, r);
        if (problem) failed++;
        out(problem ? `${r}: ${problem}` : `${r}: ${RESULTS_REF} shared`);
      }
      process.exitCode = failed ? 1 : 0;
    });
}
