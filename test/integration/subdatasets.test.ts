import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { datum, ENV, TestDataset } from '../helpers/dataset.js';

const SPEC = `input:
  pfs: { repo: subjects, glob: "/sub-*" }
transform:
  cmd: [sh, -c]
  stdin:
    - 'cat "$MINIPACH_IN_subjects/data.txt" > "$MINIPACH_OUT/copy"'
    - 'find subjects -name data.txt | wc -l | tr -d " " > "$MINIPACH_OUT/visible"'
`;

describe('subdatasets as datums', () => {
  let ds: TestDataset;
  afterAll(() => ds?.cleanup());

  it('globs across subdatasets, keys them by content, installs only the datum\'s own', async () => {
    ds = await TestDataset.create();
    const src = path.join(path.dirname(ds.dir), 'src');
    await execa('datalad', ['create', src], { env: ENV });
    await execa('sh', ['-c', 'echo same > data.txt'], { cwd: src });
    await execa('datalad', ['save', '-m', 'data'], { cwd: src, env: ENV });
    const dl = (...a: string[]) => execa('datalad', a, { cwd: ds.dir, env: ENV });
    await dl('clone', '-d', '.', src, 'subjects/sub-01');
    await dl('clone', '-d', '.', src, 'subjects/sub-02');
    // The same files under a new commit: identity comes from the tree, not the commit or the name.
    await execa('git', ['commit', '-q', '--allow-empty', '-m', 'recommit'], { cwd: path.join(ds.dir, 'subjects/sub-02'), env: ENV });
    await dl('create', '-d', '.', 'subjects/sub-03');
    await execa('sh', ['-c', 'echo other > data.txt'], { cwd: path.join(ds.dir, 'subjects/sub-03') });
    ds.write({ 'copies/spec.yml': SPEC });
    await dl('save', '-r', '-m', 'three subdatasets');
    const commits = (await ds.git('ls-tree', 'HEAD', 'subjects/')).split('\n').map((l) => l.split(/\s+/)[2]);
    expect(new Set(commits).size).toBe(3);

    const preview = JSON.parse((await ds.minipach('datums', 'copies', '--json')).stdout);
    const keyOf = (n: string) => preview.datums.find((d: { name: string }) => d.name === n).inputs[0].files[0].key;
    expect(keyOf('sub-01')).toMatch(/^TREE-/);
    expect(keyOf('sub-02')).toBe(keyOf('sub-01'));
    expect(keyOf('sub-03')).not.toBe(keyOf('sub-01'));

    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(0);
    expect(report.counts).toMatchObject({ computed: 2, linked: 1 });
    expect(datum(report, 'copies', 'sub-02').action).toBe('link');
    for (const s of ['sub-01', 'sub-03']) {
      // The command saw its own subdataset's data.txt, and no other.
      expect(readFileSync(path.join(ds.dir, `copies/${s}/visible`), 'utf8').trim()).toBe('1');
    }
    expect(readFileSync(path.join(ds.dir, 'copies/sub-03/copy'), 'utf8')).toBe('other\n');
    expect(readFileSync(path.join(ds.dir, 'copies/sub-02/copy'), 'utf8')).toBe('same\n');
    await ds.fsck();
  });
});

describe('a repo that is a subdataset', () => {
  let ds: TestDataset;
  afterAll(() => ds?.cleanup());

  it('globs inside it, dedups by content, and fetches only the datum\'s files', async () => {
    ds = await TestDataset.create();
    const dl = (...a: string[]) => execa('datalad', a, { cwd: ds.dir, env: ENV });
    await dl('create', '-d', '.', 'raw');
    ds.write({
      'raw/sub-01/scan.dat': 'identical scan\n',
      'raw/sub-02/scan.dat': 'identical scan\n',
      'raw/sub-03/scan.dat': 'a different scan\n',
      'sizes/spec.yml': `input:
  pfs: { repo: raw, glob: "/sub-*" }
transform:
  cmd: [sh, -c]
  stdin:
    - 'wc -c < "$MINIPACH_IN_raw/scan.dat" > "$MINIPACH_OUT/size"'
    - 'find raw -name scan.dat -exec test -e {} \\; -print | wc -l | tr -d " " > "$MINIPACH_OUT/present"'
`,
    });
    await dl('save', '-r', '-m', 'raw data as a subdataset');
    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(0);
    expect(report.pipelines[0]!.datums.map((d) => [d.name, d.action])).toEqual([['sub-01', 'compute'], ['sub-02', 'link'], ['sub-03', 'compute']]);
    expect(readFileSync(path.join(ds.dir, 'sizes/sub-03/size'), 'utf8').trim()).toBe('17');
    // Only the datum's own file had content in its checkout.
    expect(readFileSync(path.join(ds.dir, 'sizes/sub-03/present'), 'utf8').trim()).toBe('1');
    await ds.fsck();
  });
});
