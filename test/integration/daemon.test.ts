/**
 * The daemon, real workers and a real redis-server, as separate processes. Crashes are real kill -9s.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV, TestDataset } from '../helpers/dataset.js';
import { dones, runCommits, spawnMinipach, startDaemon, startRedis, startWorker, status, tries, waitIdle, type Proc } from '../helpers/daemon.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

/** A dataset with `n` one-file subjects and a pipeline counting each; `cmd` runs before the count. */
async function dataset(n: number, opts: { before?: string; spec?: string } = {}): Promise<TestDataset> {
  const ds = await TestDataset.create();
  cleanups.push(() => ds.cleanup());
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`raw/s${String(i).padStart(3, '0')}/data.txt`] = `subject ${i}\n`;
  files['count/spec.yml'] =
    opts.spec ??
    [
      'input: {pfs: {repo: raw, glob: "/*"}}',
      'transform:',
      '  cmd: [sh, -c]',
      `  stdin: ['${opts.before ?? 'true'}; wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/bytes"']`,
      'datum_tries: 3',
    ].join('\n') + '\n';
  ds.write(files);
  await ds.save('data and pipeline');
  return ds;
}

/** Every subject's output is on the branch exactly once, made by exactly one run commit. */
async function expectComplete(ds: TestDataset, n: number, rev = 'HEAD'): Promise<void> {
  const keys = await ds.keysUnder('count', rev);
  const outputs = Object.keys(keys).filter((p) => p.endsWith('/bytes'));
  expect(outputs).toHaveLength(n);
  const commits = (await runCommits(ds.dir, rev)).filter((c) => c.includes(' minipach count/'));
  expect(commits).toHaveLength(n);
  expect(new Set(commits).size).toBe(n);
}

function track<T extends Proc>(p: T): T {
  cleanups.push(() => p.kill9());
  return p;
}

/** A daemon killed with -9 leaves its private redis-server running (by design); tests stop it. */
function stopEmbeddedRedis(ds: TestDataset) {
  return () => execa('redis-cli', ['-s', path.join(ds.dir, '.git/minipach/daemon/redis/redis.sock'), 'shutdown', 'nosave'], { reject: false });
}

describe('the daemon with workers', () => {
  it('two workers and 50 datums: each computed exactly once, duplicate schedules add nothing, SIGTERM stops cleanly', async () => {
    const ds = await dataset(50, { before: 'sleep 0.1' });
    // A chained pipeline: it runs once the counts are on the branch, with no event of its own.
    ds.write({ 'total/spec.yml': 'input: {pfs: {repo: count, glob: "/"}}\ntransform:\n  cmd: [sh, -c]\n  stdin: [\'cat "$MINIPACH_IN_count"/*/bytes | wc -l > "$MINIPACH_OUT/n"\']\n' });
    await ds.save('a chained pipeline');
    cleanups.push(stopEmbeddedRedis(ds));
    const daemon = track(await startDaemon(ds.dir));
    // The startup run has queued all 50 by the time a schedule call is answered; these add nothing.
    const dup = await Promise.all([ds.minipach('schedule', '--no-wait'), ds.minipach('schedule', '--no-wait')]);
    for (const r of dup) expect(r.exitCode, r.stderr).toBe(0);
    // Batches of 10: a worker holds at most 10 jobs, so the one that starts second gets some too (with the
    // default 50 the first could take all 50 queued jobs before the second is up).
    const [w1, w2] = [track(await startWorker(ds.dir, daemon.redisUrl, ['--batch-size', '10'])), track(await startWorker(ds.dir, daemon.redisUrl, ['--batch-size', '10']))];
    const done = await ds.scheduleJson();
    expect(done.exitCode, done.stderr).toBe(0);
    await waitIdle(daemon.url);

    await expectComplete(ds, 50);
    // Results landed while the round computed (every few seconds), not only at its end.
    const integrations = (await ds.git('reflog', 'show', 'master', '--format=%gs')).split('\n').filter((l) => l.startsWith('minipach: integrate'));
    expect(integrations.length).toBeGreaterThanOrEqual(3);
    // The checked-out working tree followed the branch, content included.
    expect(readFileSync(path.join(ds.dir, 'total/n'), 'utf8').trim()).toBe('50');
    const t = dones(w1, w2);
    expect(t.size).toBe(51);
    expect([...t.values()].every((c) => c === 1), JSON.stringify([...tries(w1, w2)].filter(([, c]) => c > 1))).toBe(true);
    // Both workers took part.
    expect(tries(w1).size).toBeGreaterThan(0);
    expect(tries(w2).size).toBeGreaterThan(0);

    // Another schedule of an unchanged branch computes nothing.
    const again = await ds.scheduleJson();
    expect(again.report.counts).toMatchObject({ computed: 0, skipped: 51 });
    expect(tries(w1, w2).size).toBe(51);

    const st = await ds.minipach('status', '--json');
    expect(JSON.parse(st.stdout).datasets[0]).toMatchObject({ name: 'ds', branch: 'master', state: 'idle' });
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    expect(metrics).toMatch(/minipach_datums_total\{dataset="ds",outcome="computed"\} 51/);
    expect((await fetch(`${daemon.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${daemon.url}/queues/`)).status).toBe(200);
    const log = await ds.minipach('logs', 'count/s007');
    // The native executor's log: the command as it ran (datalad's placeholders filled), then its output.
    expect(log.stdout).toMatch(/^\$ rm -rf -- count\/s007 && mkdir -p -- count\/s007 && env .*MINIPACH_DATUM=s007/);
    expect(log.stdout).toContain('--- stderr ---');

    // SIGTERM: workers finish what they hold and exit; so does the daemon, removing its registration.
    expect(await w1.stop()).toBe(0);
    expect(await w2.stop()).toBe(0);
    expect(await daemon.stop()).toBe(0);
    expect(existsSync(path.join(ds.dir, '.git/minipach/daemon.json'))).toBe(false);
    expect(existsSync(path.join(ds.dir, '.git/minipach/daemon/redis/redis.sock'))).toBe(false);
    await ds.fsck();
  });

  it('a worker killed with -9 mid-job: its job runs again from a clean checkout, nothing partial is committed', async () => {
    // The command writes half its output, sleeps, then finishes: a kill in between leaves a partial file.
    const ds = await dataset(6, { before: 'echo partial > "$MINIPACH_OUT/partial"; sleep 2; rm "$MINIPACH_OUT/partial"' });
    cleanups.push(stopEmbeddedRedis(ds));
    const daemon = track(await startDaemon(ds.dir));
    const victim = track(await startWorker(ds.dir, daemon.redisUrl));
    await victim.waitFor(/try 1/);
    await new Promise((r) => setTimeout(r, 700));
    await victim.kill9();
    const survivor = track(await startWorker(ds.dir, daemon.redisUrl));
    await waitIdle(daemon.url);

    await expectComplete(ds, 6);
    expect(Object.keys(await ds.keysUnder('count')).some((p) => p.endsWith('partial'))).toBe(false);
    // Every datum finished exactly once; only the killed one was tried twice.
    const t = tries(victim, survivor);
    expect(t.size).toBe(6);
    expect([...t.values()].filter((c) => c > 1).length).toBeLessThanOrEqual(1);
    const st = await status(daemon.url);
    expect(st.jobs['failed'] ?? 0).toBe(0);
    await daemon.stop();
    await ds.fsck();
  });

  it("a worker killed with -9: its command's processes are gone within seconds, before any worker takes the slot; the retry says try 2", async () => {
    const marker = 300 + Math.floor(Math.random() * 600);
    const ds = await dataset(1, { before: `sleep ${marker}` });
    cleanups.push(stopEmbeddedRedis(ds));
    const daemon = track(await startDaemon(ds.dir));
    const victim = track(await startWorker(ds.dir, daemon.redisUrl));
    await victim.waitFor(/try 1/);
    const running = async () => (await execa('pgrep', ['-f', `sleep ${marker}`], { reject: false })).stdout.trim();
    for (let i = 0; i < 50 && !(await running()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await running()).not.toBe('');
    await victim.kill9();
    const killedAt = Date.now();
    while ((await running()) && Date.now() - killedAt < 5000) await new Promise((r) => setTimeout(r, 100));
    expect(await running(), 'the orphaned command still runs').toBe('');
    expect(Date.now() - killedAt).toBeLessThan(5000);

    // The job comes back; the next worker's try is the second, and says so.
    const survivor = track(await startWorker(ds.dir, daemon.redisUrl, ['--concurrency', '1']));
    await survivor.waitFor(/count\/s000: try 2 /, 60_000);
    const jobs = await ds.minipach('jobs', '--json');
    expect((JSON.parse(jobs.stdout) as { attempts: number }[])[0]!.attempts).toBe(2);
    await survivor.kill9();
    const again = Date.now();
    while ((await running()) && Date.now() - again < 5000) await new Promise((r) => setTimeout(r, 100));
    expect(await running()).toBe('');
    await daemon.stop();
  });

  it('a worker killed with -9 in the middle of a native batch: its finished datums are kept, the one it ran runs again, nothing twice', async () => {
    const ds = await dataset(8, { before: 'sleep 0.6' });
    cleanups.push(stopEmbeddedRedis(ds));
    const daemon = track(await startDaemon(ds.dir));
    const victim = track(await startWorker(ds.dir, daemon.redisUrl, ['--batch-size', '8', '--batch-wait-ms', '500']));
    // Three datums of the batch done (and handed in), the fourth running: kill.
    await victim.waitFor(/(: done[\s\S]*){3}/, 60_000);
    await victim.kill9();
    const finishedByVictim = dones(victim);
    expect(finishedByVictim.size).toBeGreaterThanOrEqual(3);
    const survivor = track(await startWorker(ds.dir, daemon.redisUrl, ['--batch-size', '8']));
    await waitIdle(daemon.url);
    await expectComplete(ds, 8);
    // Each datum finished exactly once over both workers: the survivor did not redo the victim's.
    const all = dones(victim, survivor);
    expect(all.size).toBe(8);
    expect([...all.values()].every((n) => n === 1)).toBe(true);
    for (const k of finishedByVictim.keys()) expect(dones(survivor).has(k)).toBe(false);
    await daemon.stop();
    await ds.fsck();
  });

  it('Redis restarted mid-run: no job is lost', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const ds = await dataset(8, { before: 'sleep 0.5' });
    const daemon = track(await startDaemon(ds.dir, [], { REDIS_URL: redis.url }));
    const w = track(await startWorker(ds.dir, redis.url));
    await w.waitFor(/: done/);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    await waitIdle(daemon.url, 180_000);
    const st = await status(daemon.url);
    expect(st.jobs['failed'] ?? 0, JSON.stringify(await ds.minipach('jobs', '--json'))).toBe(0);
    await expectComplete(ds, 8);
    await daemon.stop();
    await ds.fsck();
  });

  it.each(['integrate:before-publish', 'integrate:after-publish'])('the daemon killed at %s: after a restart the branch is complete and consistent', async (fault) => {
    const ds = await dataset(4);
    cleanups.push(stopEmbeddedRedis(ds));
    const first = track(await startDaemon(ds.dir, [], { MINIPACH_FAULT: fault }));
    const w = track(await startWorker(ds.dir, first.redisUrl));
    const exit = await first.proc;
    expect(exit.signal).toBe('SIGKILL');
    const afterCrash = await runCommits(ds.dir);
    // Before publishing nothing is on the branch; after, the first integration is (all four, or the part
    // of them that had finished when the round integrated while computing).
    if (fault === 'integrate:before-publish') expect(afterCrash).toHaveLength(0);
    else expect(afterCrash.length).toBeGreaterThan(0);

    const second = track(await startDaemon(ds.dir));
    await waitIdle(second.url);
    await expectComplete(ds, 4);
    // The results finished before the crash were integrated, not computed again.
    expect([...tries(w).values()]).toEqual([1, 1, 1, 1]);
    expect((await status(second.url)).jobs['completed'] ?? 0).toBe(0);
    await second.stop();
    await ds.fsck();
  });

  it('a push to the remote during integration: that commit and every result end up on the branch', async () => {
    // The shared remote is a bare repository; the daemon has a clone of its own; a user has another.
    const user = await dataset(5, { before: 'sleep 1.5' });
    const bare = path.join(path.dirname(user.dir), 'shared.git');
    await execa('git', ['clone', '-q', '--bare', user.dir, bare], { env: ENV });
    await execa('git', ['annex', 'init', '-q', 'shared'], { cwd: bare, env: ENV });
    await user.git('remote', 'add', 'origin', bare);
    await execa('datalad', ['push', '--to', 'origin'], { cwd: user.dir, env: ENV });
    const daemonClone = path.join(path.dirname(user.dir), 'daemon-clone');
    await execa('git', ['clone', '-q', bare, daemonClone], { env: ENV });
    await execa('git', ['annex', 'init', '-q', 'daemon'], { cwd: daemonClone, env: ENV });
    const daemonDs = new TestDataset(daemonClone);
    cleanups.push(stopEmbeddedRedis(daemonDs));

    const daemon = track(await startDaemon(daemonClone, ['--remote', 'origin']));
    const w = track(await startWorker(daemonClone, daemon.redisUrl, ['--concurrency', '2']));
    await w.waitFor(/try 1/);
    // Somebody pushes an unrelated change while the datums compute.
    user.write({ 'notes.txt': 'a note\n' });
    const theirs = await user.save('a colleague adds a note');
    await execa('datalad', ['push', '--to', 'origin'], { cwd: user.dir, env: ENV });
    await waitIdle(daemon.url);

    const tip = (await execa('git', ['rev-parse', 'master'], { cwd: bare })).stdout.trim();
    // Their commit is in the history (nothing was forced), and every result is there once.
    expect((await execa('git', ['merge-base', '--is-ancestor', theirs, tip], { cwd: bare, reject: false })).exitCode).toBe(0);
    const bareDs = new TestDataset(bare);
    await expectComplete(bareDs, 5, tip);
    // Each datum was computed once (a try that failed for a transient reason would be retried; none finished twice).
    expect(dones(w).size, w.output()).toBe(5);
    expect([...dones(w).values()].every((c) => c === 1), w.output()).toBe(true);
    // The outputs' content reached the remote: a fresh clone can get it.
    const fresh = path.join(path.dirname(user.dir), 'fresh');
    await execa('git', ['clone', '-q', bare, fresh], { env: ENV });
    await execa('git', ['annex', 'get', '-q', 'count'], { cwd: fresh, env: ENV });
    expect((await execa('cat', ['count/s000/bytes'], { cwd: fresh })).stdout.trim()).toBe('10');
    // The daemon pushed the shared results ref with the branch: one entry per datum key.
    const shared = (await execa('git', ['ls-tree', '-d', '-r', '--name-only', 'refs/minipach/results'], { cwd: bare })).stdout.split('\n');
    expect(shared.filter((p) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(p))).toHaveLength(5);
    // A worker's result carries its resources, and the fresh clone explains it from git alone.
    const x = JSON.parse((await new TestDataset(fresh).minipach('explain', 'count/s000/bytes', '--json')).stdout);
    expect(x.datums[0]).toMatchObject({ pipeline: 'count', datum: 's000', kind: 'computed' });
    expect(x.datums[0].resources.wall).toBeGreaterThan(0);
    await daemon.stop();
    await daemonDs.fsck();
  });

  it('datum_timeout kills the whole process tree and is recorded as a timeout; retry runs it again', async () => {
    const ds = await dataset(1, {
      spec: ['input: {pfs: {repo: raw, glob: "/*"}}', 'transform:', '  cmd: [sh, -c]', "  stdin: ['sh -c \"sleep 37.5\" & sleep 37.5; wait']", 'datum_tries: 1', 'datum_timeout: 2s'].join('\n') + '\n',
    });
    cleanups.push(stopEmbeddedRedis(ds));
    const daemon = track(await startDaemon(ds.dir));
    const w = track(await startWorker(ds.dir, daemon.redisUrl));
    const r = await ds.scheduleJson();
    expect(r.exitCode).toBe(1);
    const failed = r.report.pipelines[0]!.datums[0]!;
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(/timed out after 2s/);
    expect((await execa('pgrep', ['-f', 'sleep 37.5'], { reject: false })).stdout).toBe('');
    const jobs = JSON.parse((await ds.minipach('jobs', '--state', 'failed', '--json')).stdout) as { datum: string; reason: string }[];
    expect(jobs).toEqual([expect.objectContaining({ datum: 'count/s000', reason: expect.stringMatching(/timed out/) })]);

    const retry = await ds.minipach('retry', 'count/s000', '--json');
    expect(JSON.parse(retry.stdout).retried).toEqual(['count/s000']);
    await w.waitFor(/try 1[^]*try 1/);
    await waitIdle(daemon.url);
    expect(tries(w).get('count/s000')).toBe(2);
    await daemon.stop();
    await ds.fsck();
  });

  it('datum_tries: a datum that fails once is tried again after a backoff and then succeeds', async () => {
    // The first try leaves a mark outside the dataset and fails; the second finds it and succeeds.
    const mark = path.join(os.tmpdir(), `minipach-flaky-${process.pid}-${Date.now()}`);
    cleanups.push(() => rmSync(mark, { force: true }));
    const ds = await dataset(1, { before: `if [ ! -e ${mark} ]; then touch ${mark}; echo flaky >&2; exit 3; fi` });
    cleanups.push(stopEmbeddedRedis(ds));
    const daemon = track(await startDaemon(ds.dir));
    const w = track(await startWorker(ds.dir, daemon.redisUrl));
    await w.waitFor(/count\/s000: done/);
    await waitIdle(daemon.url);
    expect(w.output()).toMatch(/count\/s000: try 1[^]*exit 3[^]*count\/s000: try 2/);
    const t1 = Date.parse(/(\S+) count\/s000: exit 3/.exec(w.output())![1]!);
    const t2 = Date.parse(/(\S+) count\/s000: try 2/.exec(w.output())![1]!);
    expect(t2 - t1).toBeGreaterThanOrEqual(900);
    await expectComplete(ds, 1);
    await daemon.stop();
  });

  it('Redis unreachable, or a bad config: an actionable error, not a stack trace', async () => {
    const ds = await dataset(1);
    const cases = [
      { args: ['up', '--port', '0'], env: { REDIS_URL: 'redis://127.0.0.1:1' } as Record<string, string>, want: /cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/ },
      { args: ['worker', '--redis', 'redis://127.0.0.1:1'], env: {}, want: /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/ },
      { args: ['worker'], env: {}, want: /no Redis to take jobs from: no daemon serves/ },
      { args: ['status'], env: {}, want: /no minipach daemon serves .*minipach up/ },
    ];
    for (const c of cases) {
      const p = spawnMinipach(c.args, { cwd: ds.dir, env: c.env });
      const exit = await p.proc;
      expect(exit.exitCode, p.output()).not.toBe(0);
      expect(p.output()).toMatch(c.want);
      expect(p.output()).not.toMatch(/\n\s+at /);
    }
    ds.write({ 'bad.yml': 'datasets:\n  - path: .\n    branchez: [master]\n' });
    const bad = await ds.minipach('up', '--config', 'bad.yml');
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/bad\.yml: datasets\[0\]\.branchez: unknown key/);
  });
});
