import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { datum, ENV, TestDataset, treeKeys } from '../helpers/dataset.js';

const COUNT = `input:
  pfs: { repo: raw, glob: "/sub-*" }
transform:
  cmd: [sh, -c]
  stdin:
    - wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/bytes.txt"
`;
const SUMMARY = `input:
  pfs: { repo: count, glob: "/" }
transform:
  cmd: [sh]
  stdin:
    - 'find "$MINIPACH_IN_count" -name "*.txt" | sort > "$MINIPACH_OUT/inputs.txt"'
    - 'find "$MINIPACH_IN_count" -name bytes.txt | sort | xargs cat > "$MINIPACH_OUT/all.txt"'
`;
const OTHER = `input:
  pfs: { repo: raw, glob: "/sub-*" }
transform:
  cmd: [sh, -c]
  stdin: ['ls "$MINIPACH_IN_raw" > "$MINIPACH_OUT/listing"']
`;

describe('schedule: a chained pipeline on a real dataset', () => {
  let ds: TestDataset;
  beforeAll(async () => {
    ds = await TestDataset.create();
    ds.write({
      'raw/sub-01/data.txt': 'same content\n',
      'raw/sub-02/data.txt': 'same content\n',
      'raw/sub-03/data.txt': 'different content\n',
      'count/spec.yml': COUNT,
      'summary/spec.yml': SUMMARY,
      'other/spec.yml': OTHER,
    });
    await ds.save('data and pipelines');
  });
  afterAll(() => ds.cleanup());

  it('computes identical content once, links it, runs the chain, commits one run record per datum', async () => {
    const plan = await ds.minipach('plan', '--json');
    expect(plan.exitCode).toBe(0);
    const before = await ds.head();
    const planned = JSON.parse(plan.stdout);
    expect(planned.pipelines.find((p: { name: string }) => p.name === 'count').datums.map((d: { action: string }) => d.action)).toEqual(['compute', 'link', 'compute']);
    expect(await ds.head()).toBe(before); // plan has no side effects

    const { exitCode, report } = await ds.scheduleJson('-j', '2');
    expect(exitCode).toBe(0);
    expect(report.counts).toMatchObject({ computed: 5, linked: 2, failed: 0, blocked: 0 });
    expect(datum(report, 'count', 'sub-02').action).toBe('link');

    const keys = await ds.keysUnder('count');
    const k1 = keys['count/sub-01/bytes.txt'];
    expect(k1).toMatch(/^MD5E-s3--/);
    expect(keys['count/sub-02/bytes.txt']).toBe(k1); // same annex key, no copy
    expect(keys['count/sub-03/bytes.txt']).not.toBe(k1);
    expect(keys['count/spec.yml']).toBeDefined();

    // The downstream pipeline saw the outputs of count, and not its spec.yml or bookkeeping.
    const inputs = readFileSync(path.join(ds.dir, 'summary/inputs.txt'), 'utf8').trim().split('\n');
    expect(inputs).toEqual(['count/sub-01/bytes.txt', 'count/sub-02/bytes.txt', 'count/sub-03/bytes.txt']);

    // Each computed datum is one single-parent commit that is a datalad run record.
    const c = datum(report, 'count', 'sub-01').commit!;
    const parents = (await ds.git('rev-list', '--parents', '-n', '1', c)).trim().split(' ');
    expect(parents.length).toBe(2);
    const msg = await ds.git('log', '-1', '--format=%B', c);
    expect(msg).toMatch(/^\[DATALAD RUNCMD\] minipach count\/sub-01\n\n=== Do not change lines below ===\n/);
    const rec = JSON.parse(msg.split('=== Do not change lines below ===\n')[1]!.split('\n^^^')[0]!);
    expect(rec.cmd).toContain('MINIPACH_IN_raw=raw/sub-01');
    expect(rec.outputs).toEqual(['count/sub-01']);
    expect(rec.minipach.pipeline).toBe('count');
    expect(rec.minipach.inputs[0].files[0][0]).toBe('data.txt');

    // The working tree followed the branch.
    expect((await ds.git('status', '--porcelain')).trim()).toBe('');
    await ds.fsck();
  });

  it('a second schedule is a no-op', async () => {
    const head = await ds.head();
    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(0);
    expect(report.counts).toMatchObject({ computed: 0, linked: 0, removed: 0, skipped: 7 });
    expect(await ds.head()).toBe(head);
  });

  it('one changed input file recomputes exactly its datum and what is downstream', async () => {
    ds.write({ 'raw/sub-03/data.txt': 'changed, longer content\n' });
    await ds.save('change sub-03');
    const plan = JSON.parse((await ds.minipach('plan', '--json')).stdout);
    const sub03 = plan.pipelines.find((p: { name: string }) => p.name === 'count').datums.find((d: { name: string }) => d.name === 'sub-03');
    expect(sub03.reason).toBe('inputs changed: raw/sub-03/data.txt');

    const { report } = await ds.scheduleJson();
    const acted = report.pipelines.flatMap((p) => p.datums.filter((d) => d.action !== 'skip').map((d) => `${d.action} ${p.name}/${d.name}`));
    expect(acted.sort()).toEqual(['compute count/sub-03', 'compute other/sub-03', 'compute summary/']);
    expect(readFileSync(path.join(ds.dir, 'summary/all.txt'), 'utf8').trim().split(/\s+/)).toEqual(['13', '13', '24']);
  });

  it('a changed transform.cmd recomputes that pipeline and downstream, nothing else', async () => {
    // A new command whose outputs differ, so the downstream pipeline sees new inputs.
    ds.write({ 'count/spec.yml': COUNT.replace('wc -c <', 'wc -l <') });
    await ds.save('new count command');
    const { report } = await ds.scheduleJson();
    const acted = report.pipelines.flatMap((p) => p.datums.filter((d) => d.action !== 'skip').map((d) => `${d.action} ${p.name}/${d.name}`));
    expect(acted.sort()).toEqual(['compute count/sub-01', 'compute count/sub-03', 'compute summary/', 'link count/sub-02']);
    expect(datum(report, 'count', 'sub-01').reason).toMatch(/^transform changed/);
  });

  it('a changed code file recomputes the pipeline that names it', async () => {
    ds.write({ 'code/listing.sh': 'ls "$1"\n', 'other/spec.yml': OTHER.replace("stdin: ['ls", "code: [code/listing.sh]\n  stdin: ['sh code/listing.sh") });
    await ds.save('other uses code');
    let { report } = await ds.scheduleJson();
    expect(report.counts.computed + report.counts.linked).toBe(3);
    ds.write({ 'code/listing.sh': 'ls -1 "$1"\n' });
    await ds.save('change code');
    ({ report } = await ds.scheduleJson());
    const acted = report.pipelines.flatMap((p) => p.datums.filter((d) => d.action !== 'skip').map((d) => `${d.action} ${p.name}/${d.name}`));
    expect(acted.sort()).toEqual(['compute other/sub-01', 'compute other/sub-03', 'link other/sub-02']);
  });

  it('a deleted input datum removes its outputs', async () => {
    ds.remove('raw/sub-02');
    await ds.save('drop sub-02');
    const { report } = await ds.scheduleJson();
    expect(datum(report, 'count', 'sub-02').action).toBe('remove');
    expect(datum(report, 'other', 'sub-02').action).toBe('remove');
    const keys = await ds.keysUnder('count');
    expect(Object.keys(keys).filter((k) => k.includes('sub-02'))).toEqual([]);
    expect((await ds.git('status', '--porcelain')).trim()).toBe('');
    await ds.fsck();
  });

  it('rebuilds the result index from git history alone', async () => {
    const before = await ds.planJson();
    await execa('rm', ['-rf', path.join(ds.dir, '.git/minipach')]);
    const after = await ds.planJson();
    expect(after).toEqual(before);
    // A datum whose key exists in history is linked, not recomputed, with no local state at all.
    ds.write({ 'raw/sub-05/data.txt': 'same content\n' });
    await ds.save('sub-05 duplicates sub-01');
    const { report } = await ds.scheduleJson();
    expect(datum(report, 'count', 'sub-05').action).toBe('link');
  });

  it('datalad rerun on a fresh clone reproduces identical keys, without minipach', async () => {
    const sha = (await ds.git('log', '-1', '--format=%H', '--grep=^\\[DATALAD RUNCMD\\] minipach count/sub-03')).trim();
    const clone = path.join(path.dirname(ds.dir), 'clone');
    await execa('datalad', ['clone', ds.dir, clone], { env: ENV });
    await execa('datalad', ['rerun', '--onto=', sha], { cwd: clone, env: ENV });
    const original = await treeKeys(clone, sha, 'count/sub-03');
    const rerun = await treeKeys(clone, 'HEAD', 'count/sub-03');
    expect(Object.keys(original)).toEqual(['count/sub-03/bytes.txt']);
    expect(rerun).toEqual(original);
  });
});
