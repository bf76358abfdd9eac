/**
 * Resource accounting, forecasts, cost, versions side by side, and rebuilding the index after Redis and
 * the state dir are wiped: on real datasets, real `datalad run`s and the real daemon.
 */
import path from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datum, failures, TestDataset, type ScheduleJson } from '../helpers/dataset.js';
import { runCommits, startDaemon } from '../helpers/daemon.js';

interface Resources {
  wall: number;
  commandWall?: number;
  cpu?: number;
  maxRssKiB?: number;
}

async function resourcesOf(ds: TestDataset, file: string): Promise<Resources> {
  const r = await ds.minipach('explain', file, '--json');
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout).datums[0].resources as Resources;
}

describe('resource accounting', () => {
  let ds: TestDataset;
  beforeAll(async () => {
    ds = await TestDataset.create();
    ds.write({
      'raw/a/x': '1\n',
      'sleepy/spec.yml': `input: { pfs: { repo: raw, glob: "/*" } }
transform:
  cmd: [sh, -c]
  stdin: ['sleep 1.2; cp "$MINIPACH_IN_raw/x" "$MINIPACH_OUT/y"']
`,
      // Holds 150 MiB and burns 1.5 s of CPU, in a child process of the shell.
      'burn/spec.yml': `input: { pfs: { repo: raw, glob: "/*" } }
transform:
  cmd: [sh, -c]
  stdin:
    - |
      python3 -c "
      import time
      x = bytearray(150 * 1024 * 1024)
      while time.process_time() < 1.5: pass
      "
      echo done > "$MINIPACH_OUT/y"
`,
    });
    await ds.save('two pipelines');
    const { report } = await ds.scheduleJson();
    expect(report.counts, failures(report)).toMatchObject({ computed: 2, failed: 0 });
  });
  afterAll(() => ds.cleanup());

  it('a datum that sleeps records its wall time and little CPU', async () => {
    const r = await resourcesOf(ds, 'sleepy/a/y');
    expect(r.wall).toBeGreaterThanOrEqual(1.2);
    expect(r.commandWall).toBeGreaterThanOrEqual(1.1);
    expect(r.commandWall!).toBeLessThanOrEqual(r.wall);
    expect(r.cpu).toBeLessThan(0.3);
    expect(r.maxRssKiB).toBeGreaterThan(0);
  });

  it('a datum that burns CPU records CPU close to its wall time, and its peak memory', async () => {
    const r = await resourcesOf(ds, 'burn/a/y');
    expect(r.cpu).toBeGreaterThanOrEqual(1.3);
    expect(r.cpu).toBeLessThanOrEqual(1.5 + 0.5);
    // CPU-bound all along: CPU close to wall. Other test files share the two cores, so the bound allows
    // for the command getting only part of one (a sleeping command is near 0).
    expect(r.cpu! / r.commandWall!).toBeGreaterThan(0.35);
    expect(r.cpu! / r.commandWall!).toBeLessThan(1.2);
    expect(r.maxRssKiB).toBeGreaterThan(140 * 1024);
  });
});

describe('forecasts, cost, versions side by side, reindex', () => {
  let ds: TestDataset;
  const subjects = (from: number, to: number) => Object.fromEntries(Array.from({ length: to - from }, (_, i) => [`raw/s${from + i}/x`, `subject ${from + i}\n`]));
  const spec = (sleep: string) => `input: { pfs: { repo: raw, glob: "/*" } }
transform:
  cmd: [sh, -c]
  stdin: ['sleep ${sleep}; cp "$MINIPACH_IN_raw/x" "$MINIPACH_OUT/out"']
`;
  beforeAll(async () => {
    ds = await TestDataset.create();
    ds.write({ ...subjects(0, 4), 'work/spec.yml': spec('0.5') });
    await ds.save('four subjects');
  });
  afterAll(() => ds.cleanup());

  it('plan says "no history" before anything ran, then forecasts within a factor of 2 of the actual run', async () => {
    const first = JSON.parse((await ds.minipach('plan', '--json')).stdout);
    expect(first.forecast.pipelines[0]).toMatchObject({ pipeline: 'work', compute: 4, basis: 'no history' });
    expect((await ds.minipach('plan')).stdout).toMatch(/work +4 to compute: no history/);
    const { report: history } = await ds.scheduleJson();
    expect(history.counts.computed).toBe(4);

    ds.write(subjects(4, 9));
    await ds.save('five more');
    const plan = JSON.parse((await ds.minipach('plan', '--json', '--cpu-hour-cost', '3')).stdout);
    const f = plan.forecast.pipelines[0];
    expect(f).toMatchObject({ pipeline: 'work', compute: 5, basis: 'history', samples: 4 });
    expect(f.price).toBeCloseTo(f.cpuHours * 3, 10);
    const { report } = await ds.scheduleJson();
    expect(report.counts.computed).toBe(5);
    const ratio = plan.forecast.wall / report.seconds;
    expect(ratio, `forecast ${plan.forecast.wall} s, actual ${report.seconds} s`).toBeGreaterThan(0.5);
    expect(ratio, `forecast ${plan.forecast.wall} s, actual ${report.seconds} s`).toBeLessThan(2);
  });

  it('after a transform change the forecast uses the previous transform, marked; the old results keep their provenance', async () => {
    const before = await ds.head();
    const oldExplain = JSON.parse((await ds.minipach('explain', 'work/s1/out', '--json')).stdout);
    ds.write({ 'work/spec.yml': spec('0.6') });
    await ds.save('slower transform');
    const plan = JSON.parse((await ds.minipach('plan', '--json')).stdout);
    expect(plan.forecast.pipelines[0]).toMatchObject({ compute: 9, basis: 'previous transform', samples: 9 });
    expect((await ds.minipach('plan')).stdout).toContain("from the PREVIOUS transform's 9 results");
    const { report } = await ds.scheduleJson('-j', '2');
    expect(report.counts.computed).toBe(9);

    const now = JSON.parse((await ds.minipach('explain', 'work/s1/out', '--json')).stdout).datums[0];
    const then = JSON.parse((await ds.minipach('explain', 'work/s1/out', '--at', before, '--json')).stdout).datums[0];
    expect(then).toEqual(oldExplain.datums[0]);
    expect(then.transform.stdin[0]).toContain('sleep 0.5');
    expect(now.transform.stdin[0]).toContain('sleep 0.6');
    expect(now.transform.key).not.toBe(then.transform.key);
    expect(now.run_commit).not.toBe(then.run_commit);
    expect((await ds.git('merge-base', '--is-ancestor', then.run_commit, 'HEAD')).length).toBe(0); // still in history
  });

  it('cost attributes what the current results took to produce', async () => {
    const r = JSON.parse((await ds.minipach('cost', 'work', '--json', '--cpu-hour-cost', '10')).stdout);
    expect(r).toMatchObject({ computed: 9, linked: 0 });
    expect(r.wall).toBeGreaterThanOrEqual(9 * 0.6);
    expect(r.price).toBeCloseTo(r.cpuHours * 10, 10);
    const one = JSON.parse((await ds.minipach('cost', 'work/s3/out', '--json')).stdout);
    expect(one.datums).toHaveLength(1);
    expect(one.datums[0]).toMatchObject({ pipeline: 'work', datum: 's3', kind: 'computed' });
    const raw = await ds.minipach('cost', 'raw/s3/x');
    expect(raw.exitCode).toBe(2);
    expect(raw.stderr).toMatch(/neither a pipeline nor a minipach output/);
  });

  it('reindex after Redis, the state dir and the results ref are wiped restores the same plan, and nothing is recomputed', async () => {
    ds.write(subjects(9, 11));
    await ds.save('two more');
    let daemon = await startDaemon(ds.dir, ['--workers', '1']);
    try {
      // The daemon schedules on start too, so the two may already be computed when this schedule runs.
      const { report } = await ds.scheduleJson();
      expect(report.counts, failures(report)).toMatchObject({ failed: 0 });
      expect(Object.keys(await ds.keysUnder('work')).filter((p) => /work\/s(9|10)\/out$/.test(p))).toHaveLength(2);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    ds.write({ 'raw/s11/x': 'subject 0\n' }); // the same content as s0: a link
    await ds.save('a duplicate');
    const before = await ds.planJson();
    const refBefore = await ds.git('ls-tree', '-d', '--name-only', '-r', 'refs/minipach/results');

    // The embedded Redis keeps its data in the state dir: removing it wipes Redis, caches and failures.
    rmSync(path.join(ds.dir, '.git', 'minipach'), { recursive: true, force: true });
    await ds.git('update-ref', '-d', 'refs/minipach/results');
    const r = await ds.minipach('reindex');
    expect(r.exitCode, r.stderr).toBe(0);
    // Every result of history, both transforms: 4 + 5 + 9 under the new one + 2 = 20.
    expect(r.stdout).toMatch(/^20 datum keys with results \(20 computed, 0 linked\).*; 20 added to refs\/minipach\/results/);
    expect(await ds.git('ls-tree', '-d', '--name-only', '-r', 'refs/minipach/results')).toBe(refBefore);
    const after = await ds.planJson();
    expect(after).toEqual(before);
    expect(datum(after as unknown as ScheduleJson, 'work', 's11')).toMatchObject({ action: 'link' });

    // The daemon on the rebuilt index: the duplicate is linked (at its start or by this schedule), nothing runs.
    const runs = (await runCommits(ds.dir)).length;
    daemon = await startDaemon(ds.dir, ['--workers', '1']);
    try {
      const { report } = await ds.scheduleJson();
      expect(report.counts).toMatchObject({ computed: 0, failed: 0 });
    } finally {
      await daemon.stop();
    }
    expect((await runCommits(ds.dir)).length).toBe(runs);
    const keys = await ds.keysUnder('work');
    expect(keys['work/s11/out']).toBe(keys['work/s0/out']);
    await ds.fsck();
  });
});
