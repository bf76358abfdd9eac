import type { Command } from 'commander';
import { openDataset } from '../options.js';
import { out } from '../printers.js';

export function register(program: Command): void {
  program
    .command('reindex')
    .description("rebuild the result index from git alone (the branch's history and the results refs), and add what the shared results ref lacks")
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch to read (default: the checked-out branch)')
    .action(async (dir: string, o: { branch?: string }) => {
      const { ResultStore } = await import('../../results/index-store.js');
      const { RESULTS_REF } = await import('../../results/shared-ref.js');
      const ds = await openDataset(dir, o.branch);
      const head = (await ds.repo.resolve(ds.ref))!;
      const { index, added } = await new ResultStore(ds).reindex(head);
      const computed = index.all.filter((r) => r.kind === 'computed').length;
      out(`${index.byKey.size} datum keys with results (${computed} computed, ${index.all.length - computed} linked) from ${ds.branch} and ${RESULTS_REF}; ${added} added to ${RESULTS_REF}`);
    });
}
