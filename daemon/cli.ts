/**
 * The minipach command line. Exit codes: 0 all good, 1 a datum failed, 2 usage error or invalid spec
 * (valid pipelines still run).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectionOptions } from 'bullmq';
// The daemon, worker, Redis and watch modules (BullMQ, express, chokidar...) are imported by the commands
// that use them: loading them up front made every `plan` and `schedule` half a second slower.
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { MinipachError, SpecError, UsageError } from './errors.js';
import { planDataset, type Plan } from './core/plan.js';
import { loadSpec } from './core/spec.js';
import { DaemonClient } from './client.js';
import { findDaemon } from './registration.js';
import { openDataset, type Dataset } from './dataset.js';
import { installHooks, uninstallHooks } from './hooks.js';
import { planAtHead, schedule, type ScheduleReport } from './scheduler.js';
import { ResultStore } from './result-store.js';
import { fetchAllSharedResults, gitRemotes, pushSharedResults, RESULTS_REF, sharingReminder } from './results-ref.js';
import { explain } from './explain.js';
import { toProv, type Explanation } from './core/provenance.js';
import { attributeCost, forecastPlan, type CostReport, type Forecast } from './core/cost.js';
import { runUnchecked } from './adapters/process.js';
import { SnapshotReader } from './snapshot.js';

const out = (s: string): void => void process.stdout.write(s + '\n');
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

const seconds = (s: number) => (s < 90 ? `${s.toFixed(1)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
const money = (x: number) => x.toFixed(x < 1 ? 4 : 2);
/** CPU time in the unit that makes it readable: CPU-hours from a tenth of an hour, CPU-seconds below. */
const cpuTime = (hours: number) => (hours >= 0.1 ? `${hours.toFixed(2)} CPU-h` : `${(hours * 3600).toFixed(1)} CPU-s`);

function printForecast(f: Forecast): void {
  if (!f.pipelines.length) return;
  out('\nforecast (median job time per datum from recorded results):');
  for (const p of f.pipelines) {
    const n = `${p.compute} to compute${p.waiting ? ` + ${p.waiting} waiting for upstream` : ''}`;
    if (p.basis === 'no history') {
      out(`  ${p.pipeline.padEnd(20)} ${n}: no history (never computed here), no forecast`);
      continue;
    }
    const basis = p.basis === 'previous transform' ? `the PREVIOUS transform's ${p.samples} results (the transform changed since)` : `${p.samples} result${p.samples === 1 ? '' : 's'}`;
    out(
      `  ${p.pipeline.padEnd(20)} ${n}: ~${seconds(p.medianWall!)} each -> ${seconds(p.wall!)}` +
        `${p.cpuHours !== undefined ? `, ${cpuTime(p.cpuHours)}` : ''}${p.price !== undefined ? `, cost ${money(p.price)}` : ''} (from ${basis})`,
    );
  }
  out(`  total: ~${seconds(f.wall)} of job time one at a time, ${cpuTime(f.cpuHours)}${f.price !== undefined ? `, cost ${money(f.price)}` : ''}${f.unknown.length ? ` (not counting ${f.unknown.join(', ')}: no history)` : ''}`);
}

function printCost(title: string, r: CostReport): void {
  out(title);
  for (const d of r.datums) {
    const what = d.kind === 'computed' ? `${seconds(d.wall)} job, ${d.cpu.toFixed(2)} s CPU${d.maxRssKiB !== undefined ? `, peak ${(d.maxRssKiB / 1024).toFixed(1)} MiB` : ''}` : d.kind === 'linked' ? `linked: reuses ${d.reuses}, no cost of its own` : 'no record (edited by hand?)';
    out(`  ${label(d.pipeline, d.datum).padEnd(32)} ${what}`);
  }
  out(`${r.computed} computed, ${r.linked} linked: ${seconds(r.wall)} of job time, ${cpuTime(r.cpuHours)}${r.price !== undefined ? `, cost ${money(r.price)}` : ''}`);
}

function printExplanation(x: Explanation): void {
  out(`${x.path}  ${x.file.key}  (at ${x.commit.slice(0, 12)})`);
  if (!x.file.made_by) {
    out(`  not a minipach output: raw data, last changed in commit ${x.file.added_in ?? '(unknown)'}`);
    return;
  }
  const byId = new Map(x.datums.map((d) => [d.id, d]));
  const shown = new Set<string>();
  const show = (id: string, indent: string) => {
    const d = byId.get(id)!;
    out(`${indent}made by ${label(d.pipeline, d.datum)} (${d.kind}), datum key ${d.key}`);
    const i = indent + '  ';
    if (shown.has(id)) {
      out(`${i}(explained above)`);
      return;
    }
    shown.add(id);
    if (d.linked_from) out(`${i}linked: reuses the result of ${label(d.linked_from.pipeline, d.linked_from.datum)} from run commit ${d.linked_from.run_commit}; placed by ${d.commit}`);
    out(`${i}run commit ${d.run_commit}`);
    out(`${i}reproduce: ${d.rerun}`);
    if (d.transform) {
      const t = d.transform;
      out(`${i}transform ${t.key}`);
      if (t.cmd) out(`${i}  cmd ${JSON.stringify(t.cmd)}${t.stdin?.length ? ` stdin ${JSON.stringify(t.stdin)}` : ''}`);
      if (t.env && Object.keys(t.env).length) out(`${i}  env ${JSON.stringify(t.env)}`);
      if (t.image) out(`${i}  image ${t.image}`);
      for (const [p, k] of t.code ?? []) out(`${i}  code ${p}  ${k}`);
    }
    if (d.command) out(`${i}command: ${d.command.split('\n').join(`\n${i}  `)}`);
    if (d.resources) {
      const r = d.resources;
      out(`${i}resources: ${r.wall.toFixed(2)} s job${r.commandWall !== undefined ? `, ${r.commandWall.toFixed(2)} s command` : ''}${r.cpu !== undefined ? `, ${r.cpu.toFixed(2)} s CPU` : ''}${r.maxRssKiB !== undefined ? `, peak RSS ${(r.maxRssKiB / 1024).toFixed(1)} MiB` : ''}${d.kind === 'linked' ? ' (of the reused run)' : ''}`);
    }
    out(`${i}inputs:`);
    for (const inp of d.inputs) {
      for (const f of inp.files) {
        out(`${i}  ${inp.name}: ${f.path}  ${f.key}${f.made_by ? '' : `  (raw data, last changed in ${f.added_in?.slice(0, 12) ?? 'an unknown commit'})`}`);
      }
    }
    for (const u of d.upstream) show(u, i + '  ');
  };
  show(x.file.made_by, '  ');
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
    .description('show what schedule would do, and why, with a forecast of its cost; changes nothing on the branch')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch to plan (default: the checked-out branch)')
    .addOption(cpuHourCostOption())
    .option('--no-fetch', "do not fetch the remotes' shared results first")
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { branch?: string; json?: boolean; fetch: boolean; cpuHourCost?: number }) => {
      const ds = await openDataset(dir, o.branch);
      const warnings = o.fetch ? await fetchAllSharedResults(ds) : [];
      const { plan, index } = await planAtHead(ds);
      const forecast = forecastPlan(plan, index, await cpuHourCost(ds, o.cpuHourCost));
      if (o.json) out(JSON.stringify({ ...planJson(plan), forecast, warnings }, null, 2));
      else {
        printPlan(plan);
        printForecast(forecast);
        for (const w of warnings) out(`warning: ${w}`);
      }
      process.exitCode = plan.pipelines.some((p) => p.status === 'invalid') ? 2 : 0;
    });

  program
    .command('explain')
    .description('how exactly a file was made: datum, inputs and their keys, transform, run commit, resources, down to raw data (from git alone)')
    .argument('<path>', 'a file of the dataset')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--at <rev>', 'explain the file as of this commit or branch', 'HEAD')
    .option('--json', 'print JSON')
    .option('--prov', 'print a W3C PROV-JSON document')
    .action(async (file: string, dir: string, o: { at: string; json?: boolean; prov?: boolean }) => {
      const ds = await openDatasetAnyHead(dir);
      const x = await explain(ds, datasetPath(ds, file), o.at);
      if (o.prov) out(JSON.stringify(toProv(x), null, 2));
      else if (o.json) out(JSON.stringify(x, null, 2));
      else printExplanation(x);
    });

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
      const price = await cpuHourCost(ds, o.cpuHourCost);
      const { plan, index } = await planAtHead(ds);
      const pipeline = plan.pipelines.find((p) => p.name === target.replace(/\/+$/, ''));
      let report: CostReport;
      let title: string;
      if (pipeline) {
        report = attributeCost(pipeline.datums.filter((d) => d.action === 'skip'), index, price);
        title = `pipeline ${pipeline.name}: its ${report.datums.length} current datum results`;
      } else {
        const x = await explain(ds, datasetPath(ds, target), ds.ref);
        if (!x.file.made_by) throw new UsageError(`${target} is neither a pipeline nor a minipach output (it is raw data, last changed in ${x.file.added_in?.slice(0, 12) ?? 'an unknown commit'})`);
        report = attributeCost(x.datums.map((d) => ({ pipeline: d.pipeline, name: d.datum, key: d.key })), index, price);
        title = `${x.path}: the datum that made it and the ${x.datums.length - 1} upstream datum(s) it depends on`;
      }
      if (o.json) out(JSON.stringify({ target, ...report }, null, 2));
      else printCost(title, report);
    });

  program
    .command('reindex')
    .description("rebuild the result index from git alone (the branch's history and the results refs), and add what the shared results ref lacks")
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch to read (default: the checked-out branch)')
    .action(async (dir: string, o: { branch?: string }) => {
      const ds = await openDataset(dir, o.branch);
      const head = (await ds.repo.resolve(ds.ref))!;
      const { index, added } = await new ResultStore(ds).reindex(head);
      const computed = index.all.filter((r) => r.kind === 'computed').length;
      out(`${index.byKey.size} datum keys with results (${computed} computed, ${index.all.length - computed} linked) from ${ds.branch} and ${RESULTS_REF}; ${added} added to ${RESULTS_REF}`);
    });

  program
    .command('share')
    .description(`fetch the remotes' shared results (${RESULTS_REF}), merge them with this clone's, and push the union back`)
    .argument('[dataset]', 'dataset directory', '.')
    .option('--remote <name>', 'only this remote (default: every git remote)')
    .action(async (dir: string, o: { remote?: string }) => {
      const ds = await openDatasetAnyHead(dir);
      const remotes = o.remote ? [o.remote] : await gitRemotes(ds);
      if (!remotes.length) throw new UsageError(`${ds.dir} has no git remote to share results with`);
      let failed = 0;
      for (const r of remotes) {
        const problem = await pushSharedResults(ds, r);
        if (problem) failed++;
        out(problem ? `${r}: ${problem}` : `${r}: ${RESULTS_REF} shared`);
      }
      process.exitCode = failed ? 1 : 0;
    });

  program
    .command('schedule')
    .description('plan, run the datums that need it, and commit their results to the branch (through the daemon when one serves the dataset)')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--branch <name>', 'branch that receives results (default: the checked-out branch)')
    .addOption(new Option('-j, --jobs <n>', 'datums computed at once (in-process only)').argParser((v) => parsePositive(v, '--jobs')).default(1))
    .option('--no-wait', 'with a daemon: return once the jobs are queued')
    .option('--local', 'compute in this process even when a daemon serves the dataset')
    .option('--json', 'print a JSON report')
    .action(async (dir: string, o: { branch?: string; jobs: number; wait: boolean; local?: boolean; json?: boolean }) => {
      const ds = await openDataset(dir, o.branch);
      const bar = !o.json && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'computing {bar} {value}/{total} {datum}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
      let started = false;
      const progress = ({ done, total, datum }: { done: number; total: number; datum: string }) => {
        if (!bar || !total) return;
        if (!started || done === 0) (bar.start(total, done, { datum }), (started = true));
        else bar.update(done, { datum });
        if (done === total) (bar.stop(), (started = false));
      };
      const daemon = o.local ? undefined : await findDaemon(ds);
      let report: ScheduleReport;
      if (daemon) {
        // One code path: the daemon runs the same schedule() with its queue as the runner.
        const client = new DaemonClient(daemon.url);
        const queued = await client.schedule({ dir: ds.dir, branch: ds.branch });
        const run = await client.waitFor(queued.id, { untilEnqueued: !o.wait, onProgress: (r) => progress({ ...r.progress, datum: '' }) });
        bar?.stop();
        if (!o.wait && run.state !== 'done' && run.state !== 'failed') {
          if (o.json) out(JSON.stringify(run, null, 2));
          else if (run.state === 'queued') out(`run ${run.id} on ${daemon.url} is queued behind the schedule in progress; follow it with: minipach status`);
          else out(`run ${run.id} on ${daemon.url}: ${run.progress.total} datum job(s) queued; follow it with: minipach status`);
          return;
        }
        if (run.state === 'failed' || !run.report) throw new MinipachError(`the daemon's schedule failed: ${run.error ?? 'no report'}`);
        report = run.report;
      } else {
        // A plain clone: results come from and go to the remotes' results refs around the run (a daemon with
        // a `remote` moves them with the branch itself, see branch.ts and the committer).
        const fetchProblems = await fetchAllSharedResults(ds);
        report = await schedule(ds, { jobs: o.jobs, onProgress: progress });
        bar?.stop();
        const reminder = await sharingReminder(ds);
        report = { ...report, warnings: [...fetchProblems, ...report.warnings, ...(reminder ? [reminder] : [])] };
      }
      if (o.json) out(JSON.stringify(report, null, 2));
      else printReport(report);
      process.exitCode = report.errors.length ? 2 : report.counts.failed || report.counts.blocked ? 1 : 0;
    });

  program
    .command('up')
    .description('run the daemon: queue, scheduler, committer and HTTP server (a private Redis unless REDIS_URL is set)')
    .argument('[dataset]', 'serve this dataset (instead of --config)')
    .option('--config <file>', 'configuration file (YAML)')
    .option('--branch <name>', 'with [dataset]: the branch to follow (default: the checked-out one)')
    .option('--remote <name>', 'with [dataset]: the git remote to fetch from and push results to')
    .addOption(new Option('--port <n>', 'HTTP port (0: any free one)').argParser((v) => parseCount(v, '--port')))
    .addOption(new Option('--workers <n>', 'workers inside the daemon (0: only external ones)').argParser((v) => parseCount(v, '--workers')))
    .addOption(new Option('--concurrency <n>', 'jobs each in-process worker runs at once').argParser((v) => parsePositive(v, '--concurrency')))
    .action(async (dir: string | undefined, o: { config?: string; branch?: string; remote?: string; port?: number; workers?: number; concurrency?: number }) => {
      if (!o.config && !dir) dir = '.';
      if (o.config && dir) throw new UsageError('give either a dataset directory or --config, not both');
      const { loadConfigFile, parseConfig } = await import('./config.js');
      const raw = dir ? { datasets: [{ path: (await openDataset(dir, o.branch)).dir, branches: o.branch ? [o.branch] : undefined, remote: o.remote }] } : undefined;
      let config = o.config ? await loadConfigFile(o.config) : parseConfig('command line', raw);
      config = {
        ...config,
        http: { ...config.http, port: o.port ?? config.http.port },
        workers: o.workers ?? config.workers,
        concurrency: o.concurrency ?? config.concurrency,
      };
      const { Daemon } = await import('./daemon.js');
      const daemon = await Daemon.start(config);
      out(`minipach daemon at ${daemon.url} serving ${daemon.followers.map((f) => `${f.name}:${f.ds.branch}`).join(', ')} (redis ${daemon.redisUrl})`);
      await untilSignal(async (signal) => {
        process.stderr.write(`minipach: ${signal}: stopping (finishing the integration in progress)\n`);
        await daemon.stop();
      });
      process.exit(0);
    });

  program
    .command('worker')
    .description('compute datum jobs from the queue (on this or another machine that reaches Redis and the dataset\'s origin)')
    .argument('[dataset]', 'find the Redis of the daemon serving this dataset (unless --redis or REDIS_URL)', '.')
    .addOption(new Option('--concurrency <n>', 'jobs run at once').argParser((v) => parsePositive(v, '--concurrency')).default(1))
    .option('--redis <url>', 'Redis URL (default: REDIS_URL, else the daemon registered in the dataset)')
    .option('--prefix <name>', 'queue prefix (default: the daemon\'s, else "minipach")')
    .option('--state <dir>', 'where the worker keeps its clones (default: ~/.cache/minipach/worker)')
    .addOption(new Option('--lock-ms <n>', 'job lock time: how soon the job of a killed worker runs again').argParser((v) => parsePositive(v, '--lock-ms')))
    .action(async (dir: string, o: { concurrency: number; redis?: string; prefix?: string; state?: string; lockMs?: number }) => {
      let url = o.redis ?? process.env['REDIS_URL'];
      let prefix = o.prefix ?? process.env['MINIPACH_QUEUE_PREFIX'];
      if (!url) {
        const reg = await findDaemon(await openDataset(dir));
        if (!reg?.redisUrl) throw new UsageError(`no Redis to take jobs from: no daemon serves ${dir} and neither --redis nor REDIS_URL is set`);
        url = reg.redisUrl;
        prefix ??= reg.queuePrefix;
      }
      const { checkRedis, redisOptions } = await import('./redis.js');
      const { startWorker } = await import('./worker.js');
      await checkRedis(url);
      const lockMs = o.lockMs ?? (process.env['MINIPACH_LOCK_MS'] ? Number(process.env['MINIPACH_LOCK_MS']) : undefined);
      const worker = await startWorker({
        connection: redisOptions(url) as ConnectionOptions,
        prefix,
        concurrency: o.concurrency,
        stateDir: o.state,
        lockDurationMs: lockMs,
        log: (m) => process.stderr.write(`${new Date().toISOString()} ${m}\n`),
      });
      out(`minipach worker ${worker.name} taking jobs from ${url}`);
      await untilSignal(async (signal) => {
        process.stderr.write(`minipach worker: ${signal}: finishing the jobs in hand\n`);
        await worker.close();
      });
      process.exit(0);
    });

  const hooks = program.command('hooks').description('git hooks that hand pushes to the daemon');
  hooks
    .command('install')
    .description('install post-receive and post-update-annex into a repository (bare or not); an existing hook is chained')
    .argument('<repo>', 'the repository people push to')
    .option('--json', 'print JSON')
    .action(async (repo: string, o: { json?: boolean }) => {
      const r = await installHooks(repo);
      if (o.json) return out(JSON.stringify(r, null, 2));
      for (const c of r.changes) out(`${c.hook}: ${c.action} (${c.path})`);
      out(`pushes are spooled in ${path.join(r.gitDir, 'minipach', 'spool')}; a daemon whose dataset has this repository as its clone or remote picks them up`);
    });
  hooks
    .command('uninstall')
    .description("remove minipach's hooks, restoring any hook they chained")
    .argument('<repo>', 'the repository')
    .option('--json', 'print JSON')
    .action(async (repo: string, o: { json?: boolean }) => {
      const changes = await uninstallHooks(repo);
      if (o.json) return out(JSON.stringify(changes, null, 2));
      for (const c of changes) out(`${c.hook}: ${c.action} (${c.path})`);
    });

  program
    .command('watch')
    .description("save files written into a dataset's working tree after a quiet period, then schedule")
    .argument('[dataset]', 'dataset directory', '.')
    .addOption(new Option('--quiet-ms <n>', 'milliseconds without a change before saving').argParser((v) => parsePositive(v, '--quiet-ms')).default(2000))
    .option('--local', 'schedule in this process even when a daemon serves the dataset')
    .addOption(new Option('-j, --jobs <n>', 'datums computed at once (in-process only)').argParser((v) => parsePositive(v, '--jobs')).default(1))
    .action(async (dir: string, o: { quietMs: number; local?: boolean; jobs: number }) => {
      const ds = await openDataset(dir);
      const { watchDataset, WatchLimitError } = await import('./watch.js');
      let failure: Error | undefined;
      let stop: () => void = () => undefined;
      const stopped = new Promise<void>((res) => (stop = res));
      const w = watchDataset(ds, {
        quietMs: o.quietMs,
        schedule: async () => {
          const daemon = o.local ? undefined : await findDaemon(ds);
          if (daemon) await new DaemonClient(daemon.url).schedule({ dir: ds.dir, branch: ds.branch }, 'minipach watch');
          else {
            const r = await schedule(ds, { jobs: o.jobs });
            const c = r.counts;
            out(`scheduled: ${c.computed} computed, ${c.linked} linked, ${c.skipped} skipped, ${c.removed} removed, ${c.failed} failed`);
          }
        },
        onCycle: (c) => {
          const list = c.paths.slice(0, 10).join(', ') + (c.paths.length > 10 ? ', ...' : '');
          out(c.commit ? `saved ${c.paths.length} path(s) as ${c.commit.slice(0, 12)}: ${list}` : `nothing new to save in ${c.paths.length} changed path(s)`);
        },
        onError: (e) => {
          if (e instanceof WatchLimitError) {
            failure = e;
            stop();
          } else process.stderr.write(`minipach watch: ${e.message}\n`);
        },
      });
      await w.ready;
      out(`watching ${ds.dir} (saving ${o.quietMs} ms after the last change)`);
      const signal = untilSignal(async () => undefined);
      await Promise.race([signal, stopped]);
      await w.close();
      if (failure) throw failure;
      process.exit(0);
    });

  program
    .command('status')
    .description('the daemon\'s pipelines, job counts by state and throughput')
    .argument('[dataset]', 'dataset directory (to find its daemon)', '.')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { json?: boolean }) => {
      const { client } = await needDaemon(dir);
      const s = (await client.status()) as unknown as StatusJson;
      if (o.json) return out(JSON.stringify(s, null, 2));
      out(`daemon ${s.daemon.url} (pid ${s.daemon.pid}, up ${s.daemon.uptime_seconds}s)`);
      out(`jobs: ${Object.entries(s.jobs).map(([k, v]) => `${v} ${k}`).join(', ')}`);
      out(`throughput: ${s.throughput.computed_last_minute} computed in the last minute, ${s.throughput.computed_per_minute_last_10_minutes.toFixed(1)}/min over 10 min`);
      for (const d of s.datasets) {
        out(`\n${d.name} ${d.branch} (${d.dir}): ${d.state}${d.progress?.total ? ` ${d.progress.done}/${d.progress.total}` : ''}`);
        if (d.last_run) out(`  last run ${d.last_run.finished_at} at ${d.last_run.head.slice(0, 12)}: ${Object.entries(d.last_run.counts).map(([k, v]) => `${v} ${k}`).join(', ')}`);
        for (const p of d.pipelines ?? []) out(`  ${p.name.padEnd(24)} ${p.status.padEnd(8)} ${p.datums} datums${p.failed ? `, ${p.failed} failed` : ''}${p.error ? `  ${p.error}` : ''}`);
      }
    });

  program
    .command('jobs')
    .description('the datum jobs on the daemon\'s queue')
    .argument('[dataset]', 'dataset directory (to find its daemon)', '.')
    .option('--state <state>', 'only jobs in this state (waiting, active, delayed, completed, failed)')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { state?: string; json?: boolean }) => {
      const { client } = await needDaemon(dir);
      const jobs = (await client.jobs(o.state)) as unknown as { state: string; datum: string; key: string; attempts: number; reason?: string; dataset: string }[];
      if (o.json) return out(JSON.stringify(jobs, null, 2));
      for (const j of jobs) out(`${j.state.padEnd(10)} ${j.dataset} ${j.datum.padEnd(32)} ${short(j.key)} tries ${j.attempts}${j.reason ? `  ${j.reason}` : ''}`);
      out(`${jobs.length} job${jobs.length === 1 ? '' : 's'}`);
    });

  program
    .command('logs')
    .description('stdout and stderr of the last try of a datum')
    .argument('<datum>', '<pipeline>/<datum> (<pipeline>/. for a single-datum pipeline)')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--json', 'print JSON')
    .action(async (datum: string, dir: string, o: { json?: boolean }) => {
      const ds = await openDataset(dir);
      const reg = await findDaemon(ds);
      let result: { datum: string; source: string; log: string };
      if (reg) result = await new DaemonClient(reg.url).logs({ dir: ds.dir, branch: ds.branch }, datum);
      else {
        const i = datum.indexOf('/');
        if (i <= 0) throw new UsageError(`"${datum}" is not <pipeline>/<datum>`);
        const name = datum.slice(i + 1) === '.' ? '' : datum.slice(i + 1);
        const file = path.join(ds.stateDir, 'logs', datum.slice(0, i), `${name || '_root'}.log`);
        const log = await readFile(file, 'utf8').catch(() => {
          throw new UsageError(`no log for ${datum}: it has not run in ${ds.dir}`);
        });
        result = { datum, source: file, log };
      }
      if (o.json) out(JSON.stringify(result, null, 2));
      else process.stdout.write(result.log.endsWith('\n') ? result.log : result.log + '\n');
    });

  program
    .command('retry')
    .description('run failed datums again (their tries start over)')
    .argument('[datum]', '<pipeline>/<datum>')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--failed', 'every failed datum of the dataset')
    .option('--json', 'print JSON')
    .action(async (datum: string | undefined, dir: string, o: { failed?: boolean; json?: boolean }) => {
      if (!datum && !o.failed) throw new UsageError('say which datum to retry, or --failed for all of them');
      const { client, ds } = await needDaemon(dir);
      const r = await client.retry({ dir: ds.dir, branch: ds.branch }, { datum, failed: o.failed });
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(r.retried.length ? `retrying ${r.retried.join(', ')} (run ${r.run.id})` : `no failed job matched; scheduled run ${r.run.id} anyway`);
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

function cpuHourCostOption(): Option {
  return new Option('--cpu-hour-cost <amount>', 'price of one CPU-hour (default: git config minipach.cpuHourCost)').argParser((v) => parseAmount(v, '--cpu-hour-cost'));
}

function parseAmount(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${what} must be a number >= 0, got "${v}"`);
  return n;
}

/** The price of a CPU-hour: the option, else the dataset's `git config minipach.cpuHourCost`, else none. */
async function cpuHourCost(ds: Dataset, option: number | undefined): Promise<number | undefined> {
  if (option !== undefined) return option;
  const r = await runUnchecked(['git', 'config', '--get', 'minipach.cpuHourCost'], { cwd: ds.dir });
  return r.exitCode === 0 && r.stdout.trim() ? parseAmount(r.stdout.trim(), 'git config minipach.cpuHourCost') : undefined;
}

/** A dataset for reading history only: git alone will do (no annex needed), and a detached HEAD too. */
async function openDatasetAnyHead(dir: string): Promise<Dataset> {
  try {
    return await openDataset(dir, undefined, undefined, { readOnly: true });
  } catch (e) {
    if (!(e instanceof UsageError) || !/detached HEAD/.test(e.message)) throw e;
    const branch = (await runUnchecked(['git', 'for-each-ref', '--count=1', '--format=%(refname:short)', 'refs/heads/'], { cwd: dir })).stdout.trim();
    return openDataset(dir, branch, undefined, { readOnly: true });
  }
}

/** A path given on the command line, relative to the dataset root: as typed inside the dataset, or as a dataset path. */
function datasetPath(ds: Dataset, p: string): string {
  const abs = path.resolve(p);
  const fromCwd = path.relative(ds.dir, abs);
  const rel = !fromCwd.startsWith('..') && !path.isAbsolute(fromCwd) ? fromCwd : path.isAbsolute(p) ? undefined : path.normalize(p);
  if (rel === undefined || rel.startsWith('..') || rel === '' || rel === '.') throw new UsageError(`${p} is not a path inside the dataset ${ds.dir}`);
  return rel.split(path.sep).join('/');
}

function parseCount(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number, got "${v}"`);
  return n;
}

interface StatusJson {
  daemon: { url: string; pid: number; uptime_seconds: number };
  jobs: Record<string, number>;
  throughput: { computed_last_minute: number; computed_per_minute_last_10_minutes: number };
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

async function needDaemon(dir: string): Promise<{ client: DaemonClient; ds: Dataset }> {
  const ds = await openDataset(dir);
  const reg = await findDaemon(ds);
  if (!reg) throw new UsageError(`no minipach daemon serves ${ds.dir}; start one with: minipach up ${dir} (or set MINIPACH_URL to reach one elsewhere)`);
  return { client: new DaemonClient(reg.url), ds };
}

/** Resolves after the first SIGINT/SIGTERM has been handled; a second one exits at once. */
function untilSignal(onSignal: (signal: string) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const handler = (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      onSignal(signal).then(resolve, reject);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

function parsePositive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  // Output piped into `head` and cut short: stop quietly, as other command-line tools do.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
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
