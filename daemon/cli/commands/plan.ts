import type { Command } from 'commander';
import type { Dataset } from '../../adapters/dataset.js';
import { cpuHourCost, cpuHourCostOption, openDataset } from '../options.js';
import type { Plan } from '../../core/plan.js';
import { jsonFields, out, planJsonPieces, printForecast, printPlan, writeOut } from '../printers.js';

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
      // The planner's modules load while git answers the questions before planning.
      const planner = Promise.all([import('../../core/cost.js'), import('../../schedule/plan-at-head.js')]);
      const { fetchAllSharedResults } = await import('../../results/shared-ref.js');
      const ds = await openDataset(dir, o.branch);
      const [warnings, price] = await Promise.all([o.fetch ? fetchAllSharedResults(ds) : [], cpuHourCost(ds, o.cpuHourCost)]);
      if (o.json) return planJson(ds, price, warnings, planner);
      const [{ forecastPlan }, { planAtHead }] = await planner;
      const { plan, index } = await planAtHead(ds);
      printPlan(plan);
      printForecast(forecastPlan(plan, index, price));
      for (const w of warnings) out(`warning: ${w}`);
      process.exitCode = exitCodeOf(plan);
    });
}

const exitCodeOf = (plan: Plan) => (plan.pipelines.some((p) => p.status === 'invalid') ? 2 : 0);

/**
 * `plan --json`, on one line (a plan of 100k datums is tens of megabytes, for programs and jq). Kept as it
 * is written out (adapters/plan-memo.ts): asked again with nothing changed, it is read back, not planned.
 */
async function planJson(ds: Dataset, price: number | undefined, warnings: readonly string[], planner: Promise<[typeof import('../../core/cost.js'), typeof import('../../schedule/plan-at-head.js')]>): Promise<void> {
  const { PlanMemo } = await import('../../adapters/plan-memo.js');
  const memo = new PlanMemo(ds);
  const { key, head } = await memo.key({ cpuHourCost: price });
  const replayed = await memo.replay(key, process.stdout);
  if (replayed) {
    await writeOut([...jsonFields({ warnings, planning: { snapshot: 'memo', hashed: 0 } }), '}\n']);
    process.exitCode = Number(replayed.meta['exitCode'] ?? 0);
    return;
  }
  const [{ forecastPlan }, { planAtHead }] = await planner;
  // The head the key was read at: what is kept under the key is the plan of that commit.
  const { plan, index, planning } = await planAtHead(ds, undefined, undefined, head);
  const recorder = await memo.recorder(key);
  try {
    for (const piece of planJsonPieces(plan, { forecast: forecastPlan(plan, index, price) }, { close: false })) {
      await recorder.write(piece);
      await writeOut([piece]);
    }
    await writeOut([...jsonFields({ warnings, planning }), '}\n']);
    await recorder.commit({ exitCode: exitCodeOf(plan) });
  } catch (e) {
    await recorder.abandon();
    throw e;
  }
  process.exitCode = exitCodeOf(plan);
}
