import type { Command } from 'commander';
import { datasetPath, openDatasetReadOnly } from '../options.js';
import { out, printExplanation } from '../printers.js';

export function register(program: Command): void {
  program
    .command('explain')
    .description('how exactly a file was made: datum, inputs and their keys, transform, run commit, resources, down to raw data (from git alone)')
    .argument('<path>', 'a file of the dataset')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--at <rev>', 'explain the file as of this commit or branch', 'HEAD')
    .option('--json', 'print JSON')
    .option('--prov', 'print a W3C PROV-JSON document')
    .action(async (file: string, dir: string, o: { at: string; json?: boolean; prov?: boolean }) => {
      const { toProv } = await import('../../core/provenance.js');
      const { explain } = await import('../../results/explain.js');
      const ds = await openDatasetReadOnly(dir);
      const x = await explain(ds, datasetPath(ds, file), o.at);
      if (o.prov) out(JSON.stringify(toProv(x), null, 2));
      else if (o.json) out(JSON.stringify(x, null, 2));
      else printExplanation(x);
    });
}
