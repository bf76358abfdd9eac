/**
 * `npm run bench [-- --quick | --planning | --integrate | --slurm | --e2e [--no-loop] | --daemon-at N] [-- --out FILE] [-- --logs DIR] [-- --readme | --readme-only]`: minipach beside Snakemake and a `datalad run`
 * loop, on the same generated workloads, in one run. Prints one table; writes the same figures as JSON;
 * with --readme, regenerates the README's performance section from that JSON.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QueueEvents, type ConnectionOptions } from 'bullmq';
import { execa } from 'execa';
import { QUEUE_NAME } from '../daemon/queue/datum-queue.js';
import { redisOptions } from '../daemon/adapters/redis.js';
import { addCountSpec, changeOneFile, ENV, plainFiles, planningDataset, runDataset, subjects } from './workloads.js';
import { integrateAtOnce } from './integrate.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = path.join(ROOT, 'bin/minipach.js');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const logDir = args.includes('--logs') ? path.resolve(args[args.indexOf('--logs') + 1]!) : undefined;
const outFile = args.includes('--out') ? path.resolve(args[args.indexOf('--out') + 1]!) : path.join(ROOT, 'bench/out/results.json');

interface Measure {
  wall: number;
  maxRssKiB: number;
}

/** Runs a command under GNU time: wall seconds and peak RSS of the process (KiB). */
async function measure(cmd: string[], cwd: string, env: Record<string, string> = {}): Promise<Measure & { stdout: string }> {
  const tf = path.join(os.tmpdir(), `bench-time-${process.pid}`);
  const r = await execa('/usr/bin/time', ['-o', tf, '-f', '%e %M', ...cmd], { cwd, env: { ...ENV, ...env }, reject: false, all: true });
  const [wall, rss] = readFileSync(tf, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed in ${cwd} (exit ${r.exitCode}):\n${r.all?.slice(-2000)}`);
  return { wall: wall!, maxRssKiB: rss!, stdout: r.stdout };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

interface Figure {
  id: string;
  figure: string;
  unit: string;
  minipach: number | null;
  peer?: string;
  peerValue?: number | null;
  /** peerValue / minipach: every figure is lower-is-better, so above 1x minipach is better, below 1x worse. */
  ratio?: number | null;
  target?: string;
  met?: boolean | null;
  note?: string;
}

const figures: Figure[] = [];
const log = (s: string) => process.stderr.write(s + '\n');

async function planning(root: string, sizes: number[], repeats: number, snakeUpTo: number) {
  // Start-up of the compiled bin, which every command pays.
  const helps: number[] = [];
  for (let r = 0; r < 3; r++) helps.push((await measure(['node', BIN, '--help'], root)).wall);
  const help = median(helps);
  figures.push({ id: 'help', figure: 'minipach --help (start-up)', unit: 's', minipach: help, target: '< 0.15 s', met: help < 0.15 });
  for (const n of sizes) {
    log(`planning: ${n} datums`);
    const ds = await planningDataset(root, n);
    const plain = n <= snakeUpTo ? plainFiles(root, n) : undefined;
    const mp: Measure[] = [];
    const sm: number[] = [];
    const floors: number[] = [];
    for (let r = 0; r < repeats; r++) {
      // Cold for minipach: no result-index cache, a fresh process.
      rmSync(path.join(ds, '.git/minipach'), { recursive: true, force: true });
      const m = await measure(['node', BIN, 'plan', '--json'], ds);
      const planned = JSON.parse(m.stdout).pipelines[0].datums.length;
      if (planned !== n) throw new Error(`minipach planned ${planned} datums, expected ${n}`);
      mp.push(m);
      // The floor: reading the tree and every symlink's target, which any plan of this commit must do once.
      // Measured beside each plan and its median taken too: one measurement of it swung 0.6-0.8 s here.
      floors.push((await measure(['sh', '-c', "git ls-tree -r -z -l HEAD | tr '\\0' '\\n' | awk '$1==\"120000\"{print $3}' | git cat-file --batch > /dev/null"], ds)).wall);
      if (plain) sm.push((await measure(['snakemake', '-n', '-c1', '--quiet'], plain)).wall);
    }
    const mpWall = median(mp.map((m) => m.wall));
    const smWall = sm.length ? median(sm) : null;
    figures.push({
      id: `plan-${n}`,
      figure: `plan ${n} datums, cold (no cache)`,
      unit: 's',
      minipach: mpWall,
      peer: 'snakemake -n',
      peerValue: smWall,
      ratio: smWall ? smWall / mpWall : null,
      target: n === 10_000 ? '>= 10x faster than snakemake -n' : undefined,
      met: n === 10_000 && smWall ? smWall / mpWall >= 10 : undefined,
      note: plain ? undefined : `snakemake -n not run above ${snakeUpTo} datums (its DAG build grows superlinearly)`,
    });
    const floor = median(floors);
    figures.push({ id: `plan-floor-${n}`, figure: `plan ${n} datums, cold, vs the floor (ls-tree -r + cat-file --batch of every symlink)`, unit: 's', minipach: mpWall, peer: 'floor', peerValue: floor, ratio: floor / mpWall, target: n === 100_000 ? '<= 3x the floor' : undefined, met: n === 100_000 ? mpWall <= 3 * floor : undefined });
    // Planned again from the snapshot cache and key memo (the kept plan removed), then answered by the kept plan.
    rmSync(path.join(ds, '.git/minipach/plan-memo'), { recursive: true, force: true });
    const planned = await measure(['node', BIN, 'plan', '--json'], ds);
    figures.push({ id: `replan-nochange-planned-${n}`, figure: `re-plan, nothing changed, planned again (kept plan removed), ${n}`, unit: 's', minipach: planned.wall, peer: 'cold plan', peerValue: mpWall, ratio: mpWall / planned.wall });
    const same = await measure(['node', BIN, 'plan', '--json'], ds);
    if (!same.stdout.includes('"planning":{"snapshot":"memo"')) throw new Error('the no-change re-plan did not read the kept plan');
    figures.push({ id: `replan-nochange-${n}`, figure: `re-plan, nothing changed (the kept plan), ${n}`, unit: 's', minipach: same.wall, peer: 'cold plan', peerValue: mpWall, ratio: mpWall / same.wall, target: n === 100_000 ? '<= 1 s and <= 1/4 of the cold plan' : undefined, met: n === 100_000 ? same.wall <= 1 && same.wall <= mpWall / 4 : undefined });
    await changeOneFile(ds, Math.floor(n / 2));
    const changed = await measure(['node', BIN, 'plan', '--json'], ds);
    figures.push({ id: `replan-onefile-${n}`, figure: `re-plan after a one-file change, ${n}`, unit: 's', minipach: changed.wall });
    const rssMiB = median(mp.map((m) => m.maxRssKiB)) / 1024;
    // The target is in MB (10^6 bytes): 300 MB is 286 MiB.
    figures.push({ id: `plan-rss-${n}`, figure: `peak RSS planning ${n} datums, cold`, unit: 'MiB', minipach: rssMiB, target: n === 100_000 ? '< 300 MB (286 MiB)' : undefined, met: n === 100_000 ? rssMiB * 2 ** 20 < 300e6 : undefined });
    rmSync(ds, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    if (plain) rmSync(plain, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

/**
 * `n` trivial datums through a private Slurm cluster (the tests' one: slurm-wlm and munge, 2 CPUs declared,
 * so 2 tasks at once, as in-process runs 2 batches at once), tasks cloning a bare origin; beside the
 * in-process native executor on the same data. Counts the sbatch calls (a wrapper logs them).
 */
async function throughSlurm(root: string, n: number) {
  log(`slurm: ${n} datums through a private cluster`);
  const { startSlurmCluster } = await import('../test/helpers/slurm.js');
  const cluster = await startSlurmCluster({ cpus: 2 });
  try {
    const ds = await runDataset(root, 'slurm-minipach', n, false);
    const origin = path.join(root, 'slurm-origin.git');
    await execa('git', ['init', '-q', '--bare', origin]);
    await execa('git', ['remote', 'add', 'origin', origin], { cwd: ds });
    await execa('git', ['push', '-q', 'origin', 'HEAD', 'git-annex'], { cwd: ds });
    await execa('git', ['annex', 'init', 'origin'], { cwd: origin, env: ENV });
    await execa('git', ['annex', 'copy', '--quiet', '--to', 'origin'], { cwd: ds, env: ENV });
    const calls = path.join(root, 'sbatch-calls');
    const wrapper = path.join(root, 'sbatch');
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> '${calls}'\nexec sbatch "$@"\n`, { mode: 0o755 });
    const env = { ...cluster.env, MINIPACH_SBATCH: wrapper };
    const m = await measure(['node', BIN, 'schedule', '--executor', 'slurm', '--json'], ds, env);
    const ended = Date.now();
    const report = JSON.parse(m.stdout);
    if (report.counts.computed !== n) throw new Error(`minipach on Slurm computed ${report.counts.computed} of ${n}`);
    // When the last task ended, by Slurm's clock (seconds; jobs stay in scontrol for MinJobAge).
    const jobs = await execa('scontrol', ['show', 'job', '--oneliner'], { env: cluster.env });
    const ends = [...jobs.stdout.matchAll(/EndTime=(\S+)/g)].map((x) => new Date(x[1]!).getTime()).filter((t) => !Number.isNaN(t));
    const lastEnd = Math.max(...ends);
    const sbatchCalls = readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;
    const local = await runDataset(root, 'slurm-local', n, false);
    const l = await measure(['node', BIN, 'schedule', '-j', '2', '--json'], local);
    figures.push({ id: `slurm-sbatch-${n}`, figure: `Slurm, ${n} datums: sbatch calls (batch 50)`, unit: '', minipach: sbatchCalls, note: `${Math.ceil(n / 50)} array tasks` });
    figures.push({ id: `slurm-wall-${n}`, figure: `Slurm, ${n} datums, wall (2 tasks at once)`, unit: 's', minipach: m.wall, peer: 'in-process -j2', peerValue: l.wall, ratio: l.wall / m.wall });
    figures.push({ id: `slurm-overhead-${n}`, figure: `Slurm, overhead per datum, ${n} datums (wall x 2 / n)`, unit: 's', minipach: perDatum(m.wall, 2, n), peer: 'in-process -j2', peerValue: perDatum(l.wall, 2, n), ratio: perDatum(l.wall, 2, n) / perDatum(m.wall, 2, n) });
    figures.push({ id: `slurm-last-task-${n}`, figure: 'Slurm: from the last task ending to the results on the branch (the schedule done)', unit: 's', minipach: (ended - lastEnd) / 1000, note: "Slurm's EndTime has one-second resolution" });
  } finally {
    await cluster.stop();
  }
}

/**
 * Integrating n results in one call (bench/integrate.ts) at each size, the cost per result beside the
 * smallest size's (how it grows with what the branch already holds), and the plan after it.
 */
async function integration(root: string, sizes: number[]) {
  const smallest = sizes[0]!;
  let first = 0;
  for (const n of sizes) {
    log(`integrating ${n} results at once`);
    const r = await integrateAtOnce(root, n);
    const perResult = (r.seconds / n) * 1000;
    if (n === smallest) first = perResult;
    figures.push({ id: `integrate-${n}`, figure: `integrating ${n} results at once (${n} run commits in one fast-import, the branch, its working tree, the results ref)`, unit: 's', minipach: r.seconds });
    figures.push({
      id: `integrate-per-result-${n}`,
      figure: `integrating ${n} results at once, per result`,
      unit: 'ms',
      minipach: perResult,
      ...(n === smallest ? {} : { peer: `at ${smallest}`, peerValue: first, ratio: first / perResult, target: '<= 1.5x of the smallest (not O(results) per result)', met: perResult <= 1.5 * first }),
    });
    const replan = await measure(['node', BIN, 'plan', '--json'], r.dir);
    const actions = new Set((JSON.parse(replan.stdout) as { pipelines: { datums: { action: string }[] }[] }).pipelines.flatMap((p) => p.datums.map((d) => d.action)));
    if (actions.size !== 1 || !actions.has('skip')) throw new Error(`after integrating ${n} results the plan still has ${[...actions].join(', ')}`);
    figures.push({ id: `integrate-replan-${n}`, figure: `re-plan after integrating ${n} results at once (every datum current)`, unit: 's', minipach: replan.wall });
    rmSync(r.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
  // As a schedule integrates while the rest compute: a few hundred at a time, each on the last, the
  // checked-out working tree following each time.
  const n = sizes.at(-1)!;
  const per = 250;
  log(`integrating ${n} results, ${per} at a time`);
  const r = await integrateAtOnce(root, n, per);
  figures.push({ id: `integrate-${n}-by-${per}`, figure: `integrating ${n} results, ${per} at a time (${Math.ceil(n / per)} integrations, the working tree following each)`, unit: 's', minipach: r.seconds });
  rmSync(r.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}

/** Per datum overhead: wall x parallelism / n (the commands themselves take ~0 s). */
const perDatum = (wall: number, par: number, n: number) => (wall * par) / n;
const perDatumAt = new Map<number, number>();

/**
 * End to end, `n` trivial datums, 2-way parallel: minipach in-process (the native executor, the default),
 * minipach through its daemon with two workers, and (`peers`) `snakemake -c2` on the same files; the
 * `datalad run` loop only where it takes minutes, not hours.
 */
async function endToEnd(root: string, n: number, opts: { peers: boolean; loop: boolean; daemon: boolean }) {
  log(`end to end: ${n} datums, 2-way parallel`);
  const mds = await runDataset(root, 'e2e-minipach', n, false);
  const m = await measure(['node', BIN, 'schedule', '-j', '2', '--json'], mds);
  const report = JSON.parse(m.stdout);
  if (report.counts.computed !== n) throw new Error(`minipach computed ${report.counts.computed} of ${n}`);
  rmSync(mds, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  const mine = perDatum(m.wall, 2, n);
  perDatumAt.set(n, mine);
  figures.push({ id: `e2e-wall-${n}`, figure: `end to end ${n} datums, wall, in-process -j2`, unit: 's', minipach: m.wall });
  // Integrating the results (partly while computing, every 5 s) and the plan after the last integration.
  const t = report.timings as { integrateSeconds: number; integrations: number; largestIntegration: { results: number; seconds: number }; lastPlanSeconds: number } | undefined;
  if (t) {
    figures.push({ id: `e2e-integrate-${n}`, figure: `integrating ${n} results, in ${t.integrations} integrations (largest: ${t.largestIntegration.results} results in ${t.largestIntegration.seconds.toFixed(2)} s)`, unit: 's', minipach: t.integrateSeconds });
    figures.push({ id: `e2e-replan-${n}`, figure: `re-plan after integrating ${n} results (the schedule's last plan)`, unit: 's', minipach: t.lastPlanSeconds });
  }
  if (opts.peers) {
    const plain = plainFiles(root, n, 'e2e-snakemake');
    const s = await measure(['snakemake', '-c2', '--quiet'], plain);
    rmSync(plain, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    const theirs = perDatum(s.wall, 2, n);
    figures.push({ id: `e2e-wall-snakemake-${n}`, figure: `end to end ${n} datums, wall`, unit: 's', minipach: m.wall, peer: 'snakemake -c2', peerValue: s.wall, ratio: s.wall / m.wall });
    figures.push({ id: `e2e-overhead-${n}`, figure: `overhead per datum, ${n} datums (wall x 2 / n)`, unit: 's', minipach: mine, peer: 'snakemake -c2', peerValue: theirs, ratio: theirs / mine, target: '<= 1/3 of snakemake', met: mine <= theirs / 3 });
    if (opts.daemon) {
      const d = await throughDaemon(root, n);
      const viaDaemon = perDatum(d, 2, n);
      figures.push({ id: `e2e-daemon-overhead-${n}`, figure: `overhead per datum, ${n} datums, daemon + 2 workers`, unit: 's', minipach: viaDaemon, peer: 'snakemake -c2', peerValue: theirs, ratio: theirs / viaDaemon, target: '<= 1/3 of snakemake', met: viaDaemon <= theirs / 3 });
      figures.push({ id: `e2e-daemon-vs-local-${n}`, figure: `daemon + 2 workers vs in-process, ${n} datums, wall`, unit: 's', minipach: d, peer: 'in-process -j2', peerValue: m.wall, ratio: m.wall / d, target: 'within 2x of in-process', met: d <= 2 * m.wall });
    }
  }
  if (opts.loop) {
    const lds = await runDataset(root, 'e2e-datalad', n, false);
    const loop = subjects(n)
      .map((x) => `datalad run -m ${x} -i raw/${x} -o count/${x} "mkdir -p count/${x} && wc -c < raw/${x}/data.txt > count/${x}/n" >/dev/null`)
      .join(' && ');
    const l = await measure(['sh', '-c', loop], lds);
    rmSync(lds, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    figures.push({ id: `e2e-overhead-loop-${n}`, figure: `overhead per datum, ${n} datums`, unit: 's', minipach: mine, peer: 'datalad run loop', peerValue: perDatum(l.wall, 1, n), ratio: perDatum(l.wall, 1, n) / mine });
  }
  const first = perDatumAt.get(Math.min(...perDatumAt.keys()));
  if (perDatumAt.size > 1 && first) {
    const smallest = Math.min(...perDatumAt.keys());
    figures.push({ id: `e2e-growth-${n}`, figure: `overhead per datum at ${n} vs at ${smallest}`, unit: 's', minipach: mine, peer: `at ${smallest}`, peerValue: first, ratio: first / mine, target: '<= 1.5x of the smallest', met: mine <= 1.5 * first });
  }
}

/**
 * Wall time of `minipach schedule` through a daemon (no in-process worker) with two `minipach worker`s, from
 * committing the pipeline (the data is there already, so the daemon's start computes nothing) to the report.
 */
async function throughDaemon(root: string, n: number): Promise<number> {
  const dir = await runDataset(root, 'e2e-daemon', n, false, { withSpec: false });
  const procs: ReturnType<typeof execa>[] = [];
  try {
    const daemon = execa('node', [BIN, 'up', dir, '--port', '0', '--workers', '0'], { cwd: dir, env: ENV, reject: false, all: true, buffer: false });
    procs.push(daemon);
    let out = '';
    daemon.all!.on('data', (b: Buffer) => {
      out += b.toString();
      if (logDir) appendFileSync(path.join(logDir, 'daemon.log'), `${Date.now()} ${b}`);
    });
    while (!/redis (\S+)\)/.test(out)) {
      if (daemon.exitCode !== null) throw new Error(`daemon exited: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const redisUrl = /redis (\S+)\)/.exec(out)![1]!;
    for (let i = 0; i < 2; i++) {
      const state = mkdtempSync(path.join(root, `worker-${i}-`));
      const w = execa('node', [BIN, 'worker', '--redis', redisUrl, '--state', state], { cwd: dir, env: ENV, reject: false, all: true, buffer: false });
      // --logs DIR keeps what the daemon and workers said, to see where a slow run's time went.
      if (logDir) w.all!.on('data', (b: Buffer) => appendFileSync(path.join(logDir, `worker-${i}.log`), `${Date.now()} ${b}`));
      procs.push(w);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const commitAndSchedule = `git add count/spec.yml && git commit -q -m pipeline && node ${BIN} schedule --json`;
    addCountSpec(dir);
    const m = await measure(['sh', '-c', commitAndSchedule], dir);
    const report = JSON.parse(m.stdout);
    if (report.counts.computed !== n) throw new Error(`minipach (daemon) computed ${report.counts.computed} of ${n}`);
    if (logDir) writeFileSync(path.join(logDir, 'cpu.txt'), procs.map((p) => `${p.spawnargs.slice(1, 3).join(' ')}: ${cpuSeconds(p.pid!)}`).join('\n') + '\n');
    return m.wall;
  } finally {
    for (const p of procs.reverse()) p.kill('SIGTERM');
    await Promise.allSettled(procs);
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

/** CPU seconds of a process and the children it waited for (user + system), from /proc. */
function cpuSeconds(pid: number): string {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(f[i]) / 100);
  return `self ${(utime! + stime!).toFixed(1)} s, children ${(cutime! + cstime!).toFixed(1)} s`;
}

async function dedup(root: string, n: number) {
  log(`dedup: ${n} datums, half of them duplicates`);
  const unique = await runDataset(root, 'dedup-unique', n, false);
  const dup = await runDataset(root, 'dedup-half', n, true);
  const u = await measure(['node', BIN, 'schedule', '-j', '2', '--json'], unique);
  const d = await measure(['node', BIN, 'schedule', '-j', '2', '--json'], dup);
  const uc = JSON.parse(u.stdout).counts;
  const dc = JSON.parse(d.stdout).counts;
  figures.push({ id: `dedup-computations-${n}`, figure: `computations, ${n} datums (half duplicates vs none)`, unit: 'datums', minipach: dc.computed, peer: 'same N, no duplicates', peerValue: uc.computed, ratio: uc.computed / dc.computed, note: `${dc.linked} linked` });
  figures.push({ id: `dedup-wall-${n}`, figure: `wall, ${n} datums (half duplicates vs none)`, unit: 's', minipach: d.wall, peer: 'same N, no duplicates', peerValue: u.wall, ratio: u.wall / d.wall });
  for (const x of [unique, dup]) rmSync(x, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}

/**
 * Event latency: `n` pushes, one new subject each, into a bare repository with minipach's hook, served by
 * a daemon (`--remote origin`, one in-process worker). Measured from the end of `git push`: to the job
 * turning active on the queue (BullMQ's own event), and to the result being on the bare repository's branch.
 */
async function eventLatency(root: string, n: number) {
  log(`event latency: ${n} pushes`);
  const user = await runDataset(root, 'events-user', 1, false);
  const bare = path.join(root, 'events-shared.git');
  const clone = path.join(root, 'events-daemon');
  const sh = (cmd: string[], cwd: string) => execa(cmd[0]!, cmd.slice(1), { cwd, env: ENV });
  await sh(['git', 'clone', '-q', '--bare', user, bare], root);
  await sh(['git', 'annex', 'init', '-q', 'shared'], bare);
  await sh(['git', 'remote', 'add', 'origin', bare], user);
  await sh(['datalad', 'push', '--to', 'origin'], user);
  await sh(['node', BIN, 'hooks', 'install', bare], root);
  await sh(['git', 'clone', '-q', bare, clone], root);
  await sh(['git', 'annex', 'init', '-q', 'daemon'], clone);
  const daemon = execa('node', [BIN, 'up', clone, '--remote', 'origin', '--port', '0', '--workers', '1'], { cwd: clone, env: ENV, reject: false, all: true, buffer: false });
  let out = '';
  daemon.all!.on('data', (b: Buffer) => (out += b.toString()));
  const active = new Map<string, number>();
  let events: QueueEvents | undefined;
  try {
    while (!/redis (\S+)\)/.test(out)) {
      if (daemon.exitCode !== null) throw new Error(`daemon exited: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const redisUrl = /redis (\S+)\)/.exec(out)![1]!;
    events = new QueueEvents(QUEUE_NAME, { connection: redisOptions(redisUrl) as ConnectionOptions, prefix: 'minipach' });
    await events.waitUntilReady();
    events.on('active', ({ jobId }) => active.set(jobId, Date.now()));
    const onBranch = async (file: string) => (await execa('git', ['cat-file', '-e', `master:${file}`], { cwd: bare, reject: false })).exitCode === 0;
    while (!(await onBranch('count/s000000/n'))) await new Promise((r) => setTimeout(r, 100));
    const toJob: number[] = [];
    const toResult: number[] = [];
    for (let i = 1; i <= n; i++) {
      const s = `e${String(i).padStart(3, '0')}`;
      // The user brings in the results first, as anyone pushing to a branch that receives them does.
      await sh(['git', 'fetch', '-q', 'origin'], user);
      await sh(['git', 'annex', 'merge', '-q'], user);
      await sh(['git', 'merge', '-q', '--no-edit', 'origin/master'], user);
      mkdirSync(path.join(user, 'raw', s), { recursive: true });
      writeFileSync(path.join(user, 'raw', s, 'data.txt'), `pushed subject ${i}\n`);
      await sh(['datalad', 'save', '-m', s], user);
      // The content first (copy records its location in the remote itself), then the branch.
      await sh(['git', 'annex', 'copy', '-q', '--to', 'origin', `raw/${s}`], user);
      const before = new Set(active.keys());
      await sh(['git', 'push', '-q', 'origin', 'master'], user);
      const pushed = Date.now();
      let first: number | undefined;
      while (!(await onBranch(`count/${s}/n`))) {
        first ??= [...active].find(([id]) => !before.has(id))?.[1];
        if (Date.now() - pushed > 120_000) throw new Error(`no result for ${s} after 120 s:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      first ??= [...active].find(([id]) => !before.has(id))?.[1];
      toResult.push((Date.now() - pushed) / 1000);
      if (first) toJob.push((first - pushed) / 1000);
    }
    const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
    const p95 = pct(toJob, 95);
    figures.push({ id: 'event-first-job-p50', figure: `push -> first job running, p50 (${n} pushes)`, unit: 's', minipach: pct(toJob, 50) });
    figures.push({ id: 'event-first-job-p95', figure: `push -> first job running, p95 (${n} pushes)`, unit: 's', minipach: p95, target: 'p95 < 1 s', met: p95 < 1 });
    figures.push({ id: 'event-result-p50', figure: `push -> results on the branch, p50 (${n} pushes)`, unit: 's', minipach: pct(toResult, 50) });
    figures.push({ id: 'event-result-p95', figure: `push -> results on the branch, p95 (${n} pushes)`, unit: 's', minipach: pct(toResult, 95) });
  } finally {
    await events?.close();
    daemon.kill('SIGTERM');
    await daemon;
  }
}

async function versions(): Promise<Record<string, string>> {
  const v = async (cmd: string[]) => (await execa(cmd[0]!, cmd.slice(1), { reject: false })).stdout.split('\n')[0]!.trim();
  return {
    node: process.version,
    git: await v(['git', '--version']),
    'git-annex': await v(['git', 'annex', 'version', '--raw']),
    datalad: await v(['datalad', '--version']),
    snakemake: await v(['snakemake', '--version']),
  };
}

function table(figures: readonly Figure[]): string {
  const fmt = (x: number | null | undefined, unit = '') => (x === null || x === undefined ? '-' : `${x < 10 ? x.toFixed(3) : x.toFixed(1)}${unit}`);
  const rows = figures.map((f) => [f.figure, `${fmt(f.minipach)} ${f.unit}`, f.peer ?? '', f.peer ? `${fmt(f.peerValue)} ${f.unit}` : '', f.ratio ? `${f.ratio.toFixed(2)}x` : '', f.target ? `${f.target}: ${f.met === null || f.met === undefined ? 'n/a' : f.met ? 'met' : 'MISSED'}` : '', f.note ?? '']);
  const head = ['figure', 'minipach', 'peer', 'peer value', 'peer / minipach', 'target', 'note'];
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

interface BenchResult {
  date: string;
  mode: string;
  machine: Record<string, unknown> & { cores: number; memoryGiB: number; cpu?: string };
  figures: Figure[];
}

const header = (r: BenchResult) => `minipach bench (${r.mode}), ${r.date.slice(0, 10)}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, ${r.machine.cpu}, ${r.machine.os}`;

async function main() {
  if (args.includes('--from')) {
    // Regenerate the README section from a saved run, without running anything.
    const saved = JSON.parse(readFileSync(path.resolve(args[args.indexOf('--from') + 1]!), 'utf8')) as BenchResult;
    updateReadme(saved, path.resolve(args[args.indexOf('--from') + 1]!));
    return;
  }
  await execa('bash', [path.join(ROOT, 'bench/setup.sh')], { stdio: 'inherit' });
  if (args.includes('--readme-only')) {
    // The README's section again from a results file (merged by hand from runs of single sections).
    const file = args.includes('--out') ? outFile : path.join(ROOT, 'bench/results.json');
    return updateReadme(JSON.parse(readFileSync(file, 'utf8')) as BenchResult, file);
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'minipach-bench-'));
  const started = new Date();
  try {
    if (args.includes('--daemon-at')) {
      // Only the daemon + 2 workers path, at one size (to work on it).
      const n = Number(args[args.indexOf('--daemon-at') + 1]);
      figures.push({ id: `e2e-daemon-wall-${n}`, figure: `end to end ${n} datums, wall, daemon + 2 workers`, unit: 's', minipach: await throughDaemon(root, n) });
    } else if (args.includes('--slurm')) {
      // Only the Slurm figures (the Slurm executor's issue).
      await throughSlurm(root, 1000);
    } else if (args.includes('--planning')) {
      // Only the planning figures (the planning-at-100k issue).
      await planning(root, [1000, 10_000, 100_000], 3, 10_000);
    } else if (args.includes('--integrate')) {
      // Only integrating results at once (the planning-at-100k issue's item 4).
      await integration(root, [1000, 10_000]);
    } else if (args.includes('--e2e')) {
      // Only the end-to-end figures (the native executor's issue), at every size.
      // --no-loop leaves out the `datalad run` loop (minutes, and its figure does not move).
      await endToEnd(root, 500, { peers: true, loop: !args.includes('--no-loop'), daemon: true });
      await endToEnd(root, 2000, { peers: true, loop: false, daemon: true });
      await endToEnd(root, 10_000, { peers: false, loop: false, daemon: false });
    } else if (quick) {
      await planning(root, [1000], 1, 1000);
      await integration(root, [100, 1000]);
      await endToEnd(root, 10, { peers: true, loop: true, daemon: true });
      await dedup(root, 10);
      await eventLatency(root, 3);
    } else {
      await planning(root, [1000, 10_000, 100_000], 3, 10_000);
      await integration(root, [1000, 10_000]);
      await endToEnd(root, 500, { peers: true, loop: true, daemon: true });
      await endToEnd(root, 2000, { peers: true, loop: false, daemon: true });
      await endToEnd(root, 10_000, { peers: false, loop: false, daemon: false });
      await dedup(root, 100);
      await eventLatency(root, 20);
    }
  } finally {
    rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
  const result: BenchResult = {
    date: started.toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}`, ...(await versions()) },
    figures,
  };
  await execa('mkdir', ['-p', path.dirname(outFile)]);
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`${header(result)}\n\n${table(result.figures)}\n\nJSON: ${outFile}\n`);
  if (args.includes('--readme')) updateReadme(result, outFile);
}

function updateReadme(result: BenchResult, jsonFile: string) {
  const readme = path.join(ROOT, 'README.md');
  const body = readFileSync(readme, 'utf8');
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  const versions = ['node', 'git', 'git-annex', 'datalad', 'snakemake'].map((k) => `${k} ${result.machine[k]}`).join(', ');
  const section = `${start}\n_Generated by \`npm run bench -- --readme\` from ${path.relative(ROOT, jsonFile)}: ${header(result)}; ${versions}._\n\n${table(result.figures)}\n${end}`;
  const i = body.indexOf(start);
  const j = body.indexOf(end);
  writeFileSync(readme, i >= 0 && j > i ? body.slice(0, i) + section + body.slice(j + end.length) : `${body}\n## Performance\n\n${section}\n`);
}

await main();
