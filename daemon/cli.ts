/**
 * The minipach command line. Exit codes: 0 all good, 1 a datum failed, 2 usage error or invalid spec
 * (valid pipelines still run).
 */
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { MinipachError, SpecError, UsageError } from './errors.js';
import { planDataset, type Plan } from './core/plan.js';
import { loadSpec } from './core/spec.js';
import { openDataset } from './dataset.js';
import { planAtHead, schedule, type ScheduleReport } from './scheduler.js';
import { ResultStore } from './result-store.js';
import { SnapshotReader } from './snapshot.js';

const out = (s: string) => process.stdout.write(s + '\n');
const short = (k: string) => (k ? k.slice(0, 12) : '-'.repeat(12));
const label = (pipeline: string, name: string) => `${pipeline}/${name || '.'}`;

export function planJson(plan: Plan) {
  return {
    commit: plan.commit,
    pipelines: plan.pipelines.map((p) => ({
      name: p.name,
      file: p.file,
      status: p.status,
      error: p.error ? { message: p.error.message, file: p.error.file, line: p.error.line, field: p.error.field, hint: p.error.hint } : undefined,
      upstream: p.upstream,
      notes: p.notes,
      transform_key: p.transform?.key,
      datums: p.datums.map((d) => ({
        name: d.name,
        key: d.key,
        action: d.action,
        reason: d.reason,
        output: d.outputDir,
        inputs: d.datum?.inputs.map((i) => ({ name: i.name, path: i.path, files: i.files.length })),
        source: d.source && !('pending' in d.source) ? { pipeline: d.source.pipeline, datum: d.source.datum, commit: d.source.runCommit } : undefined,
      })),
    })),
  };
}

function printPlan(plan: Plan): void {
  out(`plan at ${plan.commit.slice(0, 12)}`);
  for (const p of plan.pipelines) {
    out(`\n${p.name} (${p.status})${p.upstream.length ? ` <- ${p.upstream.join(', ')}` : ''}`);
    if (p.error) out(`  error: ${p.error.message}`);
    for (const n of p.notes) out(`  note: ${n}`);
    for (const d of p.datums) out(`  ${d.action.padEnd(8)} ${label(d.pipeline, d.name).padEnd(32)} ${short(d.key)}  ${d.reason}`);
  }
  const counts: Record<string, number> = {};
  for (const p of plan.pipelines) for (const d of p.datums) counts[d.action] = (counts[d.action] ?? 0) + 1;
  out(`\n${['compute', 'link', 'skip', 'remove', 'blocked'].map((a) => `${counts[a] ?? 0} ${a}`).join(', ')}`);
}

function printReport(r: ScheduleReport): void {
  for (const p of r.pipelines) {
    out(`${p.name} (${p.status})`);
    if (p.error) out(`  error: ${p.error}`);
    for (const d of p.datums) {
      const mark = d.status === 'failed' ? 'FAILED ' : '';
      out(`  ${mark}${d.action.padEnd(8)} ${label(d.pipeline, d.name).padEnd(32)} ${short(d.key)}  ${d.reason}${d.commit ? ` [${d.commit.slice(0, 10)}]` : ''}`);
      if (d.stderrTail) out(d.stderrTail.split('\n').map((l) => `      | ${l}`).join('\n'));
      if (d.status === 'failed' && d.log) out(`      log: ${d.log}`);
    }
  }
  for (const w of r.warnings) out(`warning: ${w}`);
  const c = r.counts;
  out(`\n${c.computed} computed, ${c.linked} linked, ${c.skipped} skipped, ${c.removed} removed, ${c.failed} failed, ${c.blocked} blocked in ${r.seconds.toFixed(1)}s (${r.branch} at ${r.head.slice(0, 12)})`);
}

export function buildProgram(): Command {
  const program = new Command('minipach')
    .description('Pachyderm-style data-driven pipelines for DataLad datasets')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('plan')
    .description('show what schedule would do, and why; changes nothing')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch to plan (default: the checked-out branch)')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { branch?: string; json?: boolean }) => {
      const ds = await openDataset(dir, o.branch);
      const { plan } = await planAtHead(ds);
      if (o.json) out(JSON.stringify(planJson(plan), null, 2));
      else printPlan(plan);
      process.exitCode = plan.pipelines.some((p) => p.status === 'invalid') ? 2 : 0;
    });

  program
    .command('schedule')
    .description('plan, run the datums that need it, and commit their results to the branch')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch that receives results (default: the checked-out branch)')
    .addOption(new Option('-j, --jobs <n>', 'datums computed at once').argParser((v) => parsePositive(v, '--jobs')).default(1))
    .option('--json', 'print a JSON report')
    .action(async (dir: string, o: { branch?: string; jobs: number; json?: boolean }) => {
      const ds = await openDataset(dir, o.branch);
      const bar = !o.json && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'computing {bar} {value}/{total} {datum}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
      let started = false;
      const report = await schedule(ds, {
        jobs: o.jobs,
        onProgress: ({ done, total, datum }) => {
          if (!bar) return;
          if (!started || done === 0) (bar.start(total, done, { datum }), (started = true));
          else bar.update(done, { datum });
          if (done === total) (bar.stop(), (started = false));
        },
      });
      bar?.stop();
      if (o.json) out(JSON.stringify(report, null, 2));
      else printReport(report);
      process.exitCode = report.errors.length ? 2 : report.counts.failed || report.counts.blocked ? 1 : 0;
    });

  program
    .command('datums')
    .description('list the datums a pipeline (or an uncommitted spec file) would produce, with files and keys')
    .argument('<pipeline>', 'pipeline name (its directory)')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--spec <file>', 'use this spec file instead of the committed one')
    .option('--branch <name>', 'branch to read (default: the checked-out branch)')
    .option('--json', 'print JSON')
    .action(async (pipeline: string, dir: string, o: { spec?: string; branch?: string; json?: boolean }) => {
      const ds = await openDataset(dir, o.branch);
      const reader = new SnapshotReader(ds.repo);
      const head = (await ds.repo.resolve(ds.ref))!;
      const snapshot = await reader.read(head);
      const specs = await reader.readSpecs(snapshot);
      if (o.spec) specs.set(pipeline, loadSpec(`${pipeline}/spec.yml`, await readFile(o.spec, 'utf8')));
      if (!specs.has(pipeline)) throw new UsageError(`no pipeline "${pipeline}": there is no ${pipeline}/spec.yml on ${ds.branch} (try --spec FILE)`);
      // The same plan as schedule's, so the preview shows exactly the datums (and keys) it would run.
      const plan = planDataset({ snapshot, specs, index: await new ResultStore(ds).load(head) });
      const p = plan.pipelines.find((x) => x.name === pipeline)!;
      if (p.error) throw p.error;
      const rows = p.datums
        .filter((d) => d.datum)
        .map((d) => ({
          name: d.name,
          key: d.key,
          action: d.action,
          join_key: d.datum!.joinKey,
          group_key: d.datum!.groupKey,
          inputs: d.datum!.inputs.map((i) => ({ name: i.name, path: i.path, files: i.files.map((f) => ({ path: f.rel ? `${i.path}/${f.rel}` : i.path, key: f.entry.contentKey })) })),
        }));
      for (const n of p.notes) process.stderr.write(`note: ${n}\n`);
      if (o.json) out(JSON.stringify({ pipeline, datums: rows }, null, 2));
      else {
        for (const r of rows) {
          out(`${label(pipeline, r.name)}  ${short(r.key)}  (${r.action})`);
          for (const i of r.inputs) for (const f of i.files) out(`    ${i.name}: ${f.path}  ${f.key}`);
        }
        out(`${rows.length} datum${rows.length === 1 ? '' : 's'}`);
      }
    });
  return program;
}

function parsePositive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError || e instanceof SpecError) {
      process.stderr.write(`minipach: ${e.message}\n`);
      return 2;
    }
    if (e instanceof MinipachError) {
      process.stderr.write(`minipach: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
