import type { Command } from 'commander';
import { openDataset } from '../../adapters/dataset.js';
import { cpuHourCost, cpuHourCostOption } from '../options.js';
import { out, planJsonPieces, printForecast, printPlan, writeOut } from '../printers.js';

export function register(program: Command): void {
  program
    .command('plan')
    .description('show what schedule would do, and why, with a forecast of its cost; changes nothing on the branch')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch to plan (default: the checked-out branch)')
    .addOption(cpuHourCostOption())
    .option('--no-fetch', "do not fetch the remotes' shared results first")
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { branch?: string; json?: boolean; fetch: boolean; cpuHourCost?: number }) => {
      const { forecastPlan } = await import('../../core/cost.js');
      const { fetchAllSharedResults } = await import('../../results/shared-ref.js');
      const { planAtHead } = await import('../../schedule/plan-at-head.js');
      const ds = await openDataset(dir, o.branch);
      const warnings = o.fetch ? await fetchAllSharedResults(ds) : [];
      const { plan, index, planning } = await planAtHead(ds);
      const forecast = forecastPlan(plan, index, await cpuHourCost(ds, o.cpuHourCost));
      // One line: a plan of 100k datums is tens of megabytes, for programs (and jq) to read.
      if (o.json) await writeOut(planJsonPieces(plan, { forecast, warnings, planning }));
      else {
        printPlan(plan);
        printForecast(forecast);
        for (const w of warnings) out(`warning: ${w}`);
      }
      process.exitCode = plan.pipelines.some((p) => p.status === 'invalid') ? 2 : 0;
    });
}
