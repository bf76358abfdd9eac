import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { openDataset } from '../options.js';
import { out } from '../printers.js';

/** `minipach report`: the dashboard as one HTML file, from git alone, to mail or attach to a paper. */
export function register(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (pipeline DAG, every datum with provenance and resources, durations, cost) from git alone')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--out <file>', 'where to write it', 'report.html')
    .option('--branch <name>', 'the branch to report on (default: the checked-out one)')
    .action(async (dir: string, o: { out: string; branch?: string }) => {
      const [{ datasetOverview }, { reportPage }, { VERSION }] = await Promise.all([import('../../schedule/overview.js'), import('../../ui/page.js'), import('../../adapters/install-dir.js')]);
      // A plain clone will do: nothing here needs the annexed content, a daemon or Redis.
      const ds = await openDataset(dir, o.branch, undefined, { readOnly: true });
      const overview = await datasetOverview(ds, path.basename(ds.dir));
      const html = await reportPage([overview], { generatedAt: new Date().toISOString(), version: VERSION });
      await writeFile(o.out, html);
      const datums = overview.pipelines.reduce((n, p) => n + p.datums.length, 0);
      out(`wrote ${o.out}: ${overview.pipelines.length} pipeline(s), ${datums} datum(s) of ${overview.dataset} ${overview.branch} at ${overview.head.slice(0, 12)} (${Math.round(html.length / 1024)} KiB, opens offline)`);
    });
}
