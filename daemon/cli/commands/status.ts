import type { Command } from 'commander';
import { needDaemon } from '../options.js';
import { out } from '../printers.js';

interface StatusJson {
  daemon: { url: string; pid: number; uptime_seconds: number };
  jobs: Record<string, number>;
  throughput: { computed_last_minute: number; computed_per_minute_last_10_minutes: number };
  running_elsewhere: { dataset: string; datum: string; on: string }[];
  datasets: {
    name: string;
    dir: string;
    branch: string;
    state: string;
    progress?: { done: number; total: number };
    last_run?: { finished_at: string; head: string; counts: Record<string, number> };
    pipelines?: { name: string; status: string; datums: number; failed: number; error?: string }[];
  }[];
}

const counts = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${v} ${k}`).join(', ');

export function register(program: Command): void {
  program
    .command('status')
    .description("the daemon's pipelines, job counts by state and throughput")
    .argument('[dataset]', 'dataset directory (to find its daemon)', '.')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { json?: boolean }) => {
      const { client } = await needDaemon(dir);
      const s = (await client.status()) as unknown as StatusJson;
      if (o.json) return out(JSON.stringify(s, null, 2));
      out(`daemon ${s.daemon.url} (pid ${s.daemon.pid}, up ${s.daemon.uptime_seconds}s)`);
      out(`jobs: ${counts(s.jobs)}`);
      out(`throughput: ${s.throughput.computed_last_minute} computed in the last minute, ${s.throughput.computed_per_minute_last_10_minutes.toFixed(1)}/min over 10 min`);
      for (const d of s.datasets) {
        out(`\n${d.name} ${d.branch} (${d.dir}): ${d.state}${d.progress?.total ? ` ${d.progress.done}/${d.progress.total}` : ''}`);
        if (d.last_run) out(`  last run ${d.last_run.finished_at} at ${d.last_run.head.slice(0, 12)}: ${counts(d.last_run.counts)}`);
        for (const r of s.running_elsewhere.filter((x) => x.dataset === d.name)) out(`  running ${r.datum} on ${r.on}`);
        for (const p of d.pipelines ?? []) out(`  ${p.name.padEnd(24)} ${p.status.padEnd(8)} ${p.datums} datums${p.failed ? `, ${p.failed} failed` : ''}${p.error ? `  ${p.error}` : ''}`);
      }
    });
}
