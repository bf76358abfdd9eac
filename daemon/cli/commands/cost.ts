import type { Command } from 'commander';
import type { Dataset } from '../../adapters/dataset.js';
import { cpuHourCost, cpuHourCostOption, datasetPath, openDataset } from '../options.js';
import type { CostReport } from '../../core/cost.js';
import { UsageError } from '../../core/errors.js';
import { out, printCost } from '../printers.js';

export function register(program: Command): void {
  program
    .command('cost')
    .description('what the current results of a pipeline, or of a file and everything upstream of it, cost to produce')
    .argument('<target>', 'a pipeline name or a file path')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch to read (default: the checked-out branch)')
    .addOption(cpuHourCostOption())
    .option('--json', 'print JSON')
    .action(async (target: string, dir: string, o: { branch?: string; json?: boolean; cpuHourCost?: number }) => {
      const ds = await openDataset(dir, o.branch);
      const { title, report } = await costOf(ds, target, await cpuHourCost(ds, o.cpuHourCost));
      if (o.json) out(JSON.stringify({ target, ...report }, null, 2));
      else printCost(title, report);
    });
}

/** The cost of a pipeline's current results, or of a file and everything upstream of it. */
async function costOf(ds: Dataset, target: string, price: number | undefined): Promise<{ title: string; report: CostReport }> {
  const [{ attributeCost }, { explain }, { planAtHead }] = await Promise.all([import('../../core/cost.js'), import('../../results/explain.js'), import('../../schedule/plan-at-head.js')]);
  const { plan, index } = await planAtHead(ds);
  const pipeline = plan.pipelines.find((p) => p.name === target.replace(/\/+$/, ''));
  if (pipeline) {
    const report = attributeCost(pipeline.datums.filter((d) => d.action === 'skip'), index, price);
    return { title: `pipeline ${pipeline.name}: its ${report.datums.length} current datum results`, report };
  }
  const x = await explain(ds, datasetPath(ds, target), ds.ref);
  if (!x.file.made_by) throw new UsageError(`${target} is neither a pipeline nor a minipach output (it is raw data, last changed in ${x.file.added_in?.slice(0, 12) ?? 'an unknown commit'})`);
  const report = attributeCost(x.datums.map((d) => ({ pipeline: d.pipeline, name: d.datum, key: d.key })), index, price);
  return { title: `${x.path}: the datum that made it and the ${x.datums.length - 1} upstream datum(s) it depends on`, report };
}
