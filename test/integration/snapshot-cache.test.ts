/**
 * The persistent snapshot (issue "planning at 100k"): a cache only. Plans from a cold, a warm and a deleted
 * cache are identical; a damaged cache file is found out and rebuilt; a new commit is read as the files
 * that changed since a cached one, and planned exactly as from scratch.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDataset } from '../helpers/dataset.js';

const COUNT = 'input: {pfs: {repo: raw, glob: "/*"}}\ntransform: {cmd: [sh, -c], stdin: [\'wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n"\']}\n';

describe('the snapshot cache', () => {
  let ds: TestDataset;
  const cacheDir = () => path.join(ds.dir, '.git/minipach/snapshots');
  const cached = () => readdirSync(cacheDir()).filter((f) => f.endsWith('.snapshot'));
  const memoDir = () => path.join(ds.dir, '.git/minipach/plan-memo');
  /** `plan --json`, with what it says about how it read the commit; `memo`: the kept plan may answer. */
  const plan = async ({ memo = false } = {}) => {
    // These tests are about planning: without the kept plan, every call plans.
    if (!memo) rmSync(memoDir(), { recursive: true, force: true });
    const r = await ds.minipach('plan', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const { forecast: _f, planning, ...rest } = JSON.parse(r.stdout) as { forecast: unknown; planning: { snapshot: string; hashed: number }; pipelines: { datums: { name: string; action: string }[] }[] };
    return { plan: rest, planning };
  };

  beforeAll(async () => {
    ds = await TestDataset.create();
    const files: Record<string, string> = { 'count/spec.yml': COUNT };
    for (let i = 0; i < 30; i++) files[`raw/s${String(i).padStart(2, '0')}/data.txt`] = `subject ${i}\n`.repeat(i + 1);
    ds.write(files);
    await ds.save('thirty subjects');
    const first = await ds.scheduleJson();
    expect(first.report.counts.computed).toBe(30);
  });
  afterAll(() => ds?.cleanup());

  it('a plan from a cold, a warm and a deleted cache is the same', async () => {
    rmSync(cacheDir(), { recursive: true, force: true });
    const cold = await plan();
    expect(cold.planning.snapshot).toBe('read');
    expect(cached()).toEqual([`${await ds.head()}.snapshot`]);
    const warm = await plan();
    expect(warm.planning.snapshot).toBe('cached');
    rmSync(cacheDir(), { recursive: true, force: true });
    const again = await plan();
    expect(again.planning.snapshot).toBe('read');
    expect(warm.plan).toEqual(cold.plan);
    expect(again.plan).toEqual(cold.plan);
    expect(cold.plan.pipelines[0]!.datums.every((d) => d.action === 'skip')).toBe(true);
  });

  it('a damaged cache file is found out, dropped and rebuilt, never trusted', async () => {
    const before = await plan();
    const file = path.join(cacheDir(), `${await ds.head()}.snapshot`);
    const good = readFileSync(file, 'utf8');
    // Another file's key in place of one subject's: well-formed, but not what the commit holds.
    const key = /(MD5E-s\d+--[0-9a-f]{32}\.txt)\0/.exec(good)![1]!;
    const other = [...good.matchAll(/(MD5E-s\d+--[0-9a-f]{32}\.txt)\0/g)].map((m) => m[1]!).find((k) => k !== key)!;
    expect(other).toBeDefined();
    writeFileSync(file, good.replace(key, other));
    const after = await plan();
    expect(after.planning.snapshot).toBe('read');
    expect(after.plan).toEqual(before.plan);
    expect(readFileSync(file, 'utf8')).toBe(good);
    // Not even parseable: the same.
    writeFileSync(file, good.slice(0, good.length / 2));
    expect((await plan()).plan).toEqual(before.plan);
    expect(readFileSync(file, 'utf8')).toBe(good);
  });

  it('a plan asked again with nothing changed is the kept one, read back; any change, or damage, plans again', async () => {
    const cold = await plan();
    const again = await plan({ memo: true });
    expect(again.planning.snapshot).toBe('memo');
    expect(again.plan).toEqual(cold.plan);
    // The exact bytes, but for how it was planned.
    const raw = async () => (await ds.minipach('plan', '--json')).stdout.replace(/,"planning":\{[^}]*\}\}\n$/, '');
    expect(await raw()).toBe(await raw());
    // Damaged: found out by its hash, dropped, planned again.
    const body = path.join(memoDir(), `${(await ds.git('branch', '--show-current')).trim()}.json`);
    writeFileSync(body, readFileSync(body, 'utf8').replace('"skip"', '"link"'));
    const damaged = await plan({ memo: true });
    expect(damaged.planning.snapshot).not.toBe('memo');
    expect(damaged.plan).toEqual(cold.plan);
    expect((await plan({ memo: true })).planning.snapshot).toBe('memo');
    // Another option, or a failure recorded, is another plan.
    expect(JSON.parse((await ds.minipach('plan', '--json', '--cpu-hour-cost', '2')).stdout).planning.snapshot).not.toBe('memo');
    writeFileSync(path.join(ds.dir, '.git/minipach/failures.json'), '{}');
    expect((await plan({ memo: true })).planning.snapshot).not.toBe('memo');
    expect((await plan({ memo: true })).planning.snapshot).toBe('memo');
  });

  it('a one-file change is read as a diff from the cached commit and re-plans that datum only, as a cold plan would', async () => {
    await plan();
    ds.write({ 'raw/s07/data.txt': 'changed\n' });
    await ds.save('one file changed');
    const warm = await plan();
    expect(warm.planning.snapshot).toBe('diff');
    expect(warm.planning.hashed).toBe(1);
    const computes = warm.plan.pipelines[0]!.datums.filter((d) => d.action !== 'skip');
    expect(computes.map((d) => [d.name, d.action])).toEqual([['s07', 'compute']]);
    // The snapshot made from the diff was cached in its turn: read back, it plans the same.
    const again = await plan();
    expect(again.planning.snapshot).toBe('cached');
    expect(again.plan).toEqual(warm.plan);
    rmSync(cacheDir(), { recursive: true, force: true });
    const cold = await plan();
    expect(cold.planning.snapshot).toBe('read');
    expect(cold.planning.hashed).toBe(30);
    expect(warm.plan).toEqual(cold.plan);
  });
});
