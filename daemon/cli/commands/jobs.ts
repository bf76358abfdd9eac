import type { Command } from 'commander';
import { needDaemon } from '../options.js';
import { out, short } from '../printers.js';

export function register(program: Command): void {
  program
    .command('jobs')
    .description("the datum jobs on the daemon's queue")
    .argument('[dataset]', 'dataset directory (to find its daemon)', '.')
    .option('--state <state>', 'only jobs in this state (waiting, active, delayed, completed, failed)')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { state?: string; json?: boolean }) => {
      const { client } = await needDaemon(dir);
      const jobs = (await client.jobs(o.state)) as unknown as { state: string; datum: string; key: string; attempts: number; reason?: string; dataset: string; ranOn?: string }[];
      if (o.json) return out(JSON.stringify(jobs, null, 2));
      for (const j of jobs) out(`${j.state.padEnd(10)} ${j.dataset} ${j.datum.padEnd(32)} ${short(j.key)} tries ${j.attempts}${j.ranOn ? ` on ${j.ranOn}` : ''}${j.reason ? `  ${j.reason}` : ''}`);
      out(`${jobs.length} job${jobs.length === 1 ? '' : 's'}`);
    });
}
