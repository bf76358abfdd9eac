/**
 * Chains of pipelines a -> b -> c (c a `/` glob over b): a failure anywhere upstream blocks everything that
 * depends on it, through the whole chain, and `plan` says what `schedule` will then do.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { datum, TestDataset } from '../helpers/dataset.js';

const A = (flag: string) => `input: { pfs: { repo: raw, glob: "/*" } }
transform:
  cmd: [sh, -c]
  stdin: ['if [ "$MINIPACH_DATUM" = s3 ] && [ -e ${flag} ]; then echo "a cannot do s3 today" >&2; exit 3; fi; cp "$MINIPACH_IN_raw" "$MINIPACH_OUT/copy"']
`;
const B = `input: { pfs: { repo: a, glob: "/*" } }
transform: { cmd: [sh, -c], stdin: ['wc -c < "$MINIPACH_IN_a/copy" > "$MINIPACH_OUT/n"'] }
`;
const C = `input: { pfs: { repo: b, glob: "/" } }
transform: { cmd: [sh, -c], stdin: ['for d in "$MINIPACH_IN_b"/s[0-9]*; do basename "$d"; done > "$MINIPACH_OUT/subjects"'] }
`;

interface PlanJson {
  pipelines: { name: string; datums: { name: string; action: string; reason: string }[] }[];
  forecast: { pipelines: { pipeline: string; compute: number; waiting: number }[]; leftOut: string[] };
}

describe('chains', () => {
  let ds: TestDataset;
  let tmp: string;
  afterEach(() => {
    ds?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a failure in a blocks b and c transitively; nothing is committed downstream; after a successful retry the chain completes', async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'minipach-flag-'));
    const flag = path.join(tmp, 'fail');
    writeFileSync(flag, '');
    ds = await TestDataset.create();
    ds.write({ 'raw/s1': 'one\n', 'raw/s2': 'two two\n', 'raw/s3': 'three three three\n', 'a/spec.yml': A(flag), 'b/spec.yml': B, 'c/spec.yml': C });
    await ds.save();

    const first = await ds.scheduleJson();
    expect(first.exitCode).toBe(1);
    expect(datum(first.report, 'a', 's3')).toMatchObject({ status: 'failed', exit: 3 });
    expect(datum(first.report, 'b', 's3')).toMatchObject({ action: 'blocked', status: 'failed', reason: 'upstream a/s3 failed (exit 3)' });
    expect(datum(first.report, 'c', '')).toMatchObject({ action: 'blocked', status: 'failed', reason: 'upstream a/s3 failed (exit 3)' });
    expect(datum(first.report, 'b', 's1').status).toBe('ok');
    const files = Object.keys(await ds.keysUnder('.'));
    expect(files.filter((f) => f.startsWith('c/') && f !== 'c/spec.yml')).toEqual([]);
    expect((await ds.git('log', '--format=%s')).split('\n').filter((s) => / c\/|c\/\./.test(s))).toEqual([]);
    await ds.fsck();

    // The same inputs, tried again once the cause is gone: the datum succeeds and the chain completes.
    rmSync(flag);
    const retried = await ds.scheduleJson();
    expect(retried.exitCode).toBe(0);
    expect(datum(retried.report, 'a', 's3')).toMatchObject({ action: 'compute', status: 'ok' });
    expect(datum(retried.report, 'c', '')).toMatchObject({ action: 'compute', status: 'ok' });
    expect(readFileSync(path.join(ds.dir, 'c/subjects'), 'utf8')).toBe('s1\ns2\ns3\n');
    await ds.fsck();
  });

  it('a new subject: plan and its forecast count exactly what schedule then computes', async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'minipach-flag-'));
    ds = await TestDataset.create();
    ds.write({ 'raw/s1': 'one\n', 'raw/s2': 'two two\n', 'a/spec.yml': A(path.join(tmp, 'never')), 'b/spec.yml': B, 'c/spec.yml': C });
    await ds.save();
    expect((await ds.scheduleJson()).exitCode).toBe(0);

    ds.write({ 'raw/s4': 'four\n' });
    await ds.save('a new subject');
    const plan = JSON.parse((await ds.minipach('plan', '--json')).stdout) as PlanJson;
    const of = (p: string, d: string) => plan.pipelines.find((x) => x.name === p)!.datums.find((x) => x.name === d)!;
    expect(of('a', 's4').action).toBe('compute');
    expect(of('b', 's4')).toMatchObject({ action: 'blocked', reason: 'waiting for upstream a/s4 (compute)' });
    expect(of('c', '')).toMatchObject({ action: 'blocked', reason: 'waiting for upstream a/s4 (compute)' });
    const text = (await ds.minipach('plan')).stdout;
    expect(text).not.toMatch(/skip\s+c\/\./);
    const forecastCount = plan.forecast.pipelines.reduce((n, p) => n + p.compute + p.waiting, 0);
    expect(plan.forecast.leftOut).toEqual([]);

    const run = await ds.scheduleJson();
    expect(run.exitCode).toBe(0);
    expect(run.report.counts.computed).toBe(3);
    expect(forecastCount).toBe(run.report.counts.computed);
    expect(existsSync(path.join(ds.dir, 'c/subjects'))).toBe(true);
  });
});
