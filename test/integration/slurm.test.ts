/**
 * The Slurm executor against a real Slurm: Debian's slurm-wlm and munge, started here as a private
 * single-node cluster in a temporary directory (test/helpers/slurm.ts) and stopped afterwards. The dataset
 * has a bare origin with its content, as a cluster without a shared file system would see it: tasks clone it,
 * get their inputs from it and hand results in to it; the branch is written by minipach's committer only.
 */
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ENV, failures, TestDataset, type ScheduleJson } from '../helpers/dataset.js';
import { clusterLogs, startSlurmCluster, type SlurmCluster } from '../helpers/slurm.js';
import { startDaemon } from '../helpers/daemon.js';
import { inBucket, S3_CREDENTIALS, startS3 } from '../helpers/s3.js';
import { podman } from '../helpers/podman.js';

let cluster: SlurmCluster;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  cluster = await startSlurmCluster({ cpus: 8 });
}, 60_000);

afterAll(async () => {
  for (const c of cleanups) c();
  await cluster?.stop();
});

/** A dataset of `n` subjects and a pipeline, pushed with its content to a bare origin the tasks clone. */
async function study(n: number, stdin: string, extra = ''): Promise<TestDataset> {
  const ds = await TestDataset.create();
  cleanups.push(() => ds.cleanup());
  const files: Record<string, string> = { 'count/spec.yml': `input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: [${JSON.stringify(stdin)}]\n${extra}` };
  for (let i = 0; i < n; i++) files[`raw/s${String(i).padStart(3, '0')}/data.txt`] = `subject ${i}\n`;
  ds.write(files);
  await ds.save('study');
  const origin = path.join(path.dirname(ds.dir), 'origin.git');
  await execa('git', ['init', '-q', '--bare', origin]);
  await ds.git('remote', 'add', 'origin', origin);
  await ds.git('push', '-q', 'origin', 'HEAD', 'git-annex');
  await execa('git', ['annex', 'init', 'origin'], { cwd: origin, env: ENV });
  await ds.git('annex', 'copy', '--quiet', '--to', 'origin');
  return ds;
}

/** `minipach schedule --executor slurm` against the test cluster; `sbatchLog` counts the sbatch calls. */
async function slurmSchedule(ds: TestDataset, args: string[], env: Record<string, string> = {}): Promise<{ exitCode: number; report: ScheduleJson; stderr: string; sbatchCalls: number }> {
  const log = path.join(path.dirname(ds.dir), `sbatch-calls-${Date.now()}`);
  const wrapper = sbatchWrapper(ds, log, env['FAIL_FIRST'] === '1');
  const r = await ds.minipachWith({ ...cluster.env, MINIPACH_SBATCH: wrapper, ...env }, 'schedule', '--executor', 'slurm', '--json', ...args);
  let report: ScheduleJson;
  try {
    report = JSON.parse(r.stdout) as ScheduleJson;
  } catch {
    throw new Error(`schedule printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}\n${clusterLogs(cluster)}`);
  }
  const sbatchCalls = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
  return { exitCode: r.exitCode, report, stderr: r.stderr, sbatchCalls };
}

/** An sbatch that logs its calls; with `failFirst`, the first one fails as a controller that is away does. */
function sbatchWrapper(ds: TestDataset, log: string, failFirst: boolean): string {
  const file = path.join(path.dirname(ds.dir), `sbatch-${Date.now()}`);
  const marker = `${file}.failed`;
  writeFileSync(
    file,
    `#!/bin/sh\necho "$*" >> '${log}'\n` +
      (failFirst ? `if [ ! -e '${marker}' ]; then touch '${marker}'; echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2; exit 1; fi\n` : '') +
      'exec sbatch "$@"\n',
  );
  chmodSync(file, 0o755);
  return file;
}

const runCommits = async (ds: TestDataset, base: string) => (await ds.git('log', '--format=%H %s', `${base}..HEAD`, '--grep', '^\\[DATALAD RUNCMD\\]')).split('\n').filter(Boolean);

describe('the Slurm executor', () => {
  it('200 datums in ceil(200 / batch) array tasks, one sbatch, each datum computed once and committed by minipach', async () => {
    const ds = await study(200, 'wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n"; echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID" > "$MINIPACH_OUT/task"');
    const base = await ds.head();
    const r = await slurmSchedule(ds, ['--batch-size', '25', '--max-running', '4']);
    expect(r.exitCode, failures(r.report) + r.stderr).toBe(0);
    expect(r.report.counts.computed).toBe(200);
    expect(r.sbatchCalls).toBe(1);
    const runs = await runCommits(ds, base);
    expect(runs.length).toBe(200);
    // Computed once each: 200 distinct datums, each from one array task, 8 tasks of 25.
    expect(new Set(runs.map((l) => l.split(' ').pop())).size).toBe(200);
    // The outputs' content is in the origin (the tasks copied it there), and this dataset knows it.
    await ds.git('annex', 'get', '--quiet', 'count');
    const tasks = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const t = readFileSync(path.join(ds.dir, `count/s${String(i).padStart(3, '0')}/task`), 'utf8');
      tasks.set(t, (tasks.get(t) ?? 0) + 1);
    }
    expect(tasks.size).toBe(8);
    expect([...tasks.values()].every((n) => n === 25)).toBe(true);
    // The branch was written here; the origin got run refs (dropped once integrated) and content, never the branch.
    expect((await execa('git', ['rev-parse', 'HEAD'], { cwd: path.join(path.dirname(ds.dir), 'origin.git') })).stdout.trim()).toBe(base);
    expect(await ds.git('for-each-ref', 'refs/minipach/runs/', 'refs/minipach/slurm/')).toBe('');
    // The logs say where each datum ran.
    expect(readFileSync(path.join(ds.dir, '.git/minipach/logs/count/s000.log'), 'utf8')).toMatch(/--- slurm ---\ntask \d+_\d+ on /);
    await ds.fsck();
  });

  it('a failing datum fails alone, with its exit and stderr; a transient sbatch failure is tried again', async () => {
    const ds = await study(6, 'if [ "$MINIPACH_DATUM" = s003 ]; then echo "s003 is bad" >&2; exit 4; fi; cp "$MINIPACH_IN_raw/data.txt" "$MINIPACH_OUT/copy"', 'datum_tries: 1\n');
    const r = await slurmSchedule(ds, ['--batch-size', '3'], { FAIL_FIRST: '1' });
    expect(r.exitCode).toBe(1);
    expect(r.report.counts.computed).toBe(5);
    expect(r.report.counts.failed).toBe(1);
    const bad = r.report.pipelines[0]!.datums.find((d) => d.name === 's003')!;
    expect(bad.status).toBe('failed');
    expect(bad.exit).toBe(4);
    expect(bad.stderrTail).toContain('s003 is bad');
    // The first sbatch failed as an unreachable controller does; the second went through.
    expect(r.sbatchCalls).toBe(2);
    expect(r.stderr).toMatch(/Socket timed out.*trying again/);
    await ds.fsck();
  });

  it('an origin away while batches are submitted: they wait and go once it is back, nothing fails', async () => {
    const ds = await study(3, 'cp "$MINIPACH_IN_raw/data.txt" "$MINIPACH_OUT/copy"');
    const origin = path.join(path.dirname(ds.dir), 'origin.git');
    renameSync(origin, `${origin}-away`);
    const back = setTimeout(() => renameSync(`${origin}-away`, origin), 4000);
    const r = await slurmSchedule(ds, []).finally(() => clearTimeout(back));
    expect(r.exitCode, failures(r.report) + r.stderr).toBe(0);
    expect(r.report.counts.computed).toBe(3);
    expect(r.stderr).toMatch(/could not put the batches where the tasks find them.*trying again/);
  });

  it('a task over its Slurm time limit is recorded as TIMEOUT and retried', async () => {
    const flag = path.join(os.tmpdir(), `minipach-first-try-${process.pid}-${Date.now()}`);
    cleanups.push(() => rmSync(flag, { force: true }));
    const ds = await study(1, `if [ ! -e '${flag}' ]; then touch '${flag}'; sleep 300; fi; echo done > "$MINIPACH_OUT/out"`, 'datum_tries: 2\nslurm:\n  time: "0:02"\n');
    const r = await slurmSchedule(ds, []);
    expect(r.exitCode, failures(r.report) + r.stderr).toBe(0);
    expect(r.report.counts.computed).toBe(1);
    expect(r.stderr).toMatch(/try 1 failed \(the Slurm task \d+_0 ran past its time limit \(TIMEOUT\)/);
    expect(r.sbatchCalls).toBe(2);
  }, 240_000);

  it('datalad rerun replays a Slurm result on a plain clone, without Slurm', async () => {
    const ds = await study(3, 'tr a-z A-Z < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/upper"');
    const base = await ds.head();
    const r = await slurmSchedule(ds, []);
    expect(r.exitCode, failures(r.report)).toBe(0);
    const clone = path.join(path.dirname(ds.dir), 'clone');
    await execa('datalad', ['clone', ds.dir, clone], { env: ENV });
    const head = await ds.head();
    await execa('datalad', ['rerun', '--branch', 'replay', '--onto', base, '--since', base], { cwd: clone, env: ENV });
    const keys = async (dir: string, rev: string) => (await execa('git', ['ls-tree', '-r', rev, '--', 'count'], { cwd: dir })).stdout.split('\n').filter((l) => !l.includes('.minipach')).map((l) => l.split(/\s+/).slice(2).join(' '));
    const replayed = await keys(clone, 'replay');
    expect(replayed.length).toBe(4);
    expect(replayed).toEqual(await keys(ds.dir, head));
    // The outputs' content is in the origin (the tasks copied it), and this dataset knows it.
    await ds.git('annex', 'get', '--quiet', 'count');
    expect(readFileSync(path.join(ds.dir, 'count/s001/upper'), 'utf8')).toBe('SUBJECT 1\n');
  });

  it("slurmd killed in the middle of a task: its datums run again once the node is back, each committed once", async () => {
    const ds = await study(4, 'sleep 4; cp "$MINIPACH_IN_raw/data.txt" "$MINIPACH_OUT/copy"');
    const base = await ds.head();
    const run = execa('node', [BIN, 'schedule', '--executor', 'slurm', '--json', '--batch-size', '4'], { cwd: ds.dir, env: { ...ENV, ...cluster.env }, reject: false });
    await until(async () => (await cluster.queue()).some((l) => l.endsWith(' RUNNING')), 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    // The node dies: slurmd, its step daemons and the task's processes.
    cluster.killNode();
    await execa('pkill', ['-9', '-f', 'slurmstepd'], { reject: false });
    await execa('pkill', ['-9', '-f', `slurm-task --home ${path.join(path.dirname(ds.dir), 'origin.git')}`], { reject: false });
    await until(async () => (await cluster.queue()).some((l) => l.endsWith(' NODE_FAIL')), 90_000);
    await cluster.startNode();
    const r = await run;
    const report = JSON.parse(r.stdout) as ScheduleJson;
    expect(r.exitCode, failures(report) + r.stderr).toBe(0);
    expect(report.counts.computed).toBe(4);
    expect(r.stderr).toMatch(/runs again: its node failed \(Slurm NODE_FAIL/);
    expect((await runCommits(ds, base)).length).toBe(4);
    await ds.fsck();
  }, 240_000);

  it('a pipeline with an image runs in its container on the nodes (podman there), got from the origin like an input', async () => {
    const pm = podman();
    cleanups.push(() => pm.cleanup());
    const image = await pm.ociArchive(await pm.rootfs('bb'), 'localhost/minipach-slurm-bb:1');
    const ds = await study(2, 'busybox | head -1 | cut -d" " -f1 > /pfs/out/os; cat /pfs/raw/*/data.txt > /pfs/out/copy', '');
    expect((await ds.minipachWith(pm.env, 'containers', 'add', 'bb', '--from', image)).exitCode).toBe(0);
    ds.write({ 'count/spec.yml': readFileSync(path.join(ds.dir, 'count/spec.yml'), 'utf8').replace('transform:\n', 'transform:\n  image: bb\n') });
    await ds.save('in a container');
    await ds.git('push', '-q', 'origin', 'HEAD');
    await ds.git('annex', 'copy', '--quiet', '--to', 'origin', '.datalad/environments/bb/image');
    const r = await slurmSchedule(ds, [], pm.env);
    expect(r.exitCode, failures(r.report) + r.stderr).toBe(0);
    await ds.git('annex', 'get', '--quiet', 'count');
    expect(readFileSync(path.join(ds.dir, 'count/s001/os'), 'utf8')).toBe('BusyBox\n');
    expect(readFileSync(path.join(ds.dir, 'count/s001/copy'), 'utf8')).toBe('subject 1\n');
  }, 120_000);

  it('a node killed and back within seconds leaves its task RUNNING in Slurm: silent past its heartbeats, it is cancelled and its datums run again', async () => {
    const ds = await study(2, 'sleep 3; cp "$MINIPACH_IN_raw/data.txt" "$MINIPACH_OUT/copy"');
    const base = await ds.head();
    const run = execa('node', [BIN, 'schedule', '--executor', 'slurm', '--json', '--batch-size', '2'], { cwd: ds.dir, env: { ...ENV, ...cluster.env, MINIPACH_SLURM_HEARTBEAT_MS: '2000' }, reject: false });
    await until(async () => (await cluster.queue()).some((l) => l.endsWith(' RUNNING')), 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    cluster.killNode();
    await execa('pkill', ['-9', '-f', 'slurmstepd'], { reject: false });
    await execa('pkill', ['-9', '-f', `slurm-task --home ${path.join(path.dirname(ds.dir), 'origin.git')}`], { reject: false });
    await cluster.startNode();
    const r = await run;
    const report = JSON.parse(r.stdout) as ScheduleJson;
    expect(r.exitCode, failures(report) + r.stderr).toBe(0);
    expect(report.counts.computed).toBe(2);
    // Slurm itself never noticed (slurmd came back in time): the heartbeat did.
    expect(r.stderr).toMatch(/task \d+_0 shows RUNNING but has not reported for \d+ s: cancelling it/);
    expect(r.stderr).toMatch(/runs again: its node went silent/);
    expect((await runCommits(ds, base)).length).toBe(2);
    await ds.fsck();
  }, 180_000);

  it('on a shared file system the tasks work in the dataset itself: no origin, no clone, content here', async () => {
    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    ds.write({ 'count/spec.yml': 'input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: [\'wc -c < "$MINIPACH_IN_raw" > "$MINIPACH_OUT/n"\']\n', 'raw/a': 'aaa\n', 'raw/b': 'bb\n' });
    await ds.save('study');
    const r = await slurmSchedule(ds, ['--shared-fs']);
    expect(r.exitCode, failures(r.report) + r.stderr).toBe(0);
    expect(r.report.counts.computed).toBe(2);
    expect(readFileSync(path.join(ds.dir, 'count/a/n'), 'utf8')).toBe('4\n');
    expect((await ds.git('annex', 'find', '--in', 'here', 'count')).split('\n').filter((p) => p.endsWith('/n')).sort()).toEqual(['count/a/n', 'count/b/n']);
    await ds.fsck();
  });

  it('a daemon whose config sends a pipeline to Slurm: its workers submit batches, jobs, status and logs show the task, stopping scancels', async () => {
    const ds = await study(6, 'sleep 1; cp "$MINIPACH_IN_raw/data.txt" "$MINIPACH_OUT/copy"');
    const base = await ds.head();
    const config = path.join(path.dirname(ds.dir), 'minipach.yml');
    writeFileSync(config, `datasets:\n  - path: ${ds.dir}\n    pipelines: { count: { executor: slurm } }\nworkers: 1\nslurm:\n  batch_size: 3\n  max_running: 2\n`);
    const daemon = await startDaemon(ds.dir, ['--config', config, '--workers', '1'], cluster.env);
    try {
      await until(async () => (await runCommits(ds, base)).length === 6, 120_000);
      expect(daemon.output()).toMatch(/count\/s000: try 1 \(\w+\) on Slurm task \d+_\d+/);
      expect((await ds.minipachWith(cluster.env, 'logs', 'count/s000')).stdout).toMatch(/--- slurm ---\ntask \d+_\d+ on /);
      // Long datums, then the daemon stops while they run: their jobs are scancelled, none is left.
      ds.write({ 'count/spec.yml': readFileSync(path.join(ds.dir, 'count/spec.yml'), 'utf8').replace('sleep 1', 'sleep 120') });
      await ds.save('slow');
      expect((await ds.minipachWith(cluster.env, 'schedule', '--no-wait')).exitCode).toBe(0);
      await until(async () => (await cluster.queue()).some((l) => l.endsWith(' RUNNING')), 60_000);
      // While they run, jobs and status say where.
      expect((await ds.minipachWith(cluster.env, 'jobs')).stdout).toMatch(/active +\S+ count\/s\d+ .* on Slurm task \d+_\d+/);
      expect((await ds.minipachWith(cluster.env, 'status')).stdout).toMatch(/running count\/s\d+ on Slurm task \d+_\d+/);
    } finally {
      await daemon.stop();
    }
    await until(async () => !(await cluster.queue()).some((l) => / (RUNNING|PENDING|COMPLETING)$/.test(l)), 30_000);
    await ds.fsck();
  }, 240_000);

  it('with storage, tasks get their inputs from the bucket and put results there; the origin holds git only', async () => {
    const s3 = await startS3(['annex']);
    cleanups.push(() => void s3.stop());
    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    const root = path.dirname(ds.dir);
    const origin = path.join(root, 'origin.git');
    await execa('git', ['init', '-q', '--bare', origin]);
    await ds.git('remote', 'add', 'origin', origin);
    await ds.git('config', 'remote.origin.annex-ignore', 'true');
    expect((await ds.minipachWith(S3_CREDENTIALS, 'storage', 'init', '--bucket', 'annex', '--endpoint', s3.endpoint)).exitCode).toBe(0);
    const files: Record<string, string> = { 'count/spec.yml': 'input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: [\'cat "$MINIPACH_IN_raw/data.txt" | rev > "$MINIPACH_OUT/rev"\']\n' };
    for (let i = 0; i < 4; i++) files[`raw/s${i}/data.txt`] = `subject ${i}\n`;
    ds.write(files);
    await ds.save('study');
    await execa('datalad', ['push', '--to', 'origin'], { cwd: ds.dir, env: { ...ENV, ...S3_CREDENTIALS } });
    const clone = path.join(root, 'daemon-clone');
    await execa('git', ['clone', '-q', origin, clone]);
    await execa('git', ['annex', 'init', '-q', 'daemon'], { cwd: clone });
    const creds = path.join(root, 's3.env');
    writeFileSync(creds, `AWS_ACCESS_KEY_ID=${S3_CREDENTIALS.AWS_ACCESS_KEY_ID}\nAWS_SECRET_ACCESS_KEY=${S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
    const config = path.join(root, 'minipach.yml');
    writeFileSync(config, `datasets:\n  - path: ${clone}\n    remote: origin\n    executor: slurm\n    storage: { remote: s3, credentials_file: ${creds} }\nworkers: 1\nslurm:\n  batch_size: 2\n`);
    const branch = (await ds.git('branch', '--show-current')).trim();
    const daemon = await startDaemon(clone, ['--config', config, '--workers', '1'], cluster.env);
    try {
      await until(async () => (await execa('git', ['log', '--format=%s', branch], { cwd: origin })).stdout.split('\n').filter((l) => l.startsWith('[DATALAD RUNCMD]')).length === 4, 120_000);
    } finally {
      await daemon.stop();
    }
    expect(daemon.output()).toMatch(/count\/s0: try 1 \(\w+\) on Slurm task \d+_\d+/);
    const links = (await execa('git', ['ls-tree', '-r', branch, '--', 'count'], { cwd: origin })).stdout.split('\n').filter((l) => l.startsWith('120000') && !l.endsWith('spec.yml'));
    expect(links.length).toBe(4);
    for (const l of links) {
      const key = path.basename((await execa('git', ['cat-file', 'blob', l.split(/\s+/)[2]!], { cwd: origin })).stdout);
      expect(await inBucket(s3.client, 'annex', key)).toBe(true);
    }
    // Nothing but git in the origin: no annex objects were handed in there.
    expect(existsSync(path.join(origin, 'annex', 'objects'))).toBe(false);
  }, 180_000);

  it('an interrupted schedule scancels its jobs: none is left in squeue', async () => {
    const ds = await study(6, 'sleep 60');
    const run = execa('node', [BIN, 'schedule', '--executor', 'slurm', '--batch-size', '1', '--max-running', '2'], { cwd: ds.dir, env: { ...ENV, ...cluster.env }, reject: false });
    await until(async () => (await cluster.queue()).some((l) => l.endsWith(' RUNNING')), 60_000);
    run.kill('SIGTERM');
    const r = await run;
    expect(r.exitCode).toBe(143);
    expect(r.stderr).toContain('cancelling the Slurm jobs of this run');
    await until(async () => !(await cluster.queue()).some((l) => / (RUNNING|PENDING|COMPLETING)$/.test(l)), 30_000);
    // Nothing was committed half-way.
    await ds.fsck();
  }, 120_000);
});

describe('minipach cancel', () => {
  it("scancels a dataset's jobs: its running datums end as cancelled, not tried again, and nothing is left in squeue", async () => {
    const ds = await study(4, 'sleep 60', 'datum_tries: 3\n');
    const run = execa('node', [BIN, 'schedule', '--executor', 'slurm', '--json', '--batch-size', '2'], { cwd: ds.dir, env: { ...ENV, ...cluster.env }, reject: false });
    await until(async () => (await cluster.queue()).some((l) => l.endsWith(' RUNNING')), 60_000);
    const c = await ds.minipachWith(cluster.env, 'cancel');
    expect(c.stdout).toMatch(/^cancelled 1 Slurm job\(s\) \(2 task\(s\)\)/);
    const r = await run;
    const report = JSON.parse(r.stdout) as ScheduleJson;
    expect(r.exitCode).toBe(1);
    expect(report.counts.failed).toBe(4);
    expect(report.pipelines[0]!.datums.every((d) => /was cancelled/.test(d.reason) && !/after \d+ tries/.test(d.reason))).toBe(true);
    expect((await cluster.queue()).filter((l) => / (RUNNING|PENDING|COMPLETING)$/.test(l))).toEqual([]);
    expect((await ds.minipachWith(cluster.env, 'cancel')).stdout).toBe('no minipach Slurm job to cancel');
    await ds.fsck();
  }, 120_000);
});

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out after ${timeoutMs} ms\n${clusterLogs(cluster)}`);
}
