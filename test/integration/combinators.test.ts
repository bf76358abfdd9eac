import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datum, failures, TestDataset } from '../helpers/dataset.js';

const PAIR = (outer: string) => `input:
  join:
    - pfs: { repo: raw/t1, glob: "/(sub-*)", join_on: "$1"${outer.includes('1') ? ', outer_join: true' : ''} }
    - pfs: { repo: raw/t2, glob: "/(sub-*)", join_on: "$1"${outer.includes('2') ? ', outer_join: true' : ''} }
transform:
  cmd: [sh, -c]
  stdin:
    - 'echo "key=$PACH_DATUM_t1_JOIN_ON$PACH_DATUM_t2_JOIN_ON t1=$t1 t2=$t2" > "$MINIPACH_OUT/seen"'
identity: path
`;
const GROUP = `input:
  group:
    - pfs: { repo: raw/t1, glob: "/(sub-*)", group_by: "$1" }
    - pfs: { repo: raw/t2, glob: "/(sub-*)", group_by: "$1" }
    - pfs: { repo: raw/notes, glob: "/(sub-*).txt", group_by: "$1" }
transform:
  cmd: [sh, -c]
  stdin: ['echo "$MINIPACH_GROUP_KEY: $MINIPACH_IN_t1 | $MINIPACH_IN_t2 | $MINIPACH_IN_notes" > "$MINIPACH_OUT/members"']
identity: path
`;
const CROSS = `input:
  cross:
    - pfs: { repo: raw/t1, glob: "/*" }
    - pfs: { repo: templates, glob: "/*" }
transform:
  cmd: [sh, -c]
  stdin: ['cat "$MINIPACH_IN_t1"/* "$MINIPACH_IN_templates" > "$MINIPACH_OUT/combined"']
`;

describe('joins, groups and crosses on a real study layout', () => {
  let ds: TestDataset;
  beforeAll(async () => {
    ds = await TestDataset.create();
    ds.write({
      'raw/t1/sub-01/anat.nii': 't1 of 01\n',
      'raw/t1/sub-02/anat.nii': 't1 of 02\n',
      'raw/t1/sub-03/anat.nii': 't1 of 03\n',
      'raw/t2/sub-02/anat.nii': 't2 of 02\n',
      'raw/t2/sub-03/anat.nii': 't2 of 03\n',
      'raw/t2/sub-04/anat.nii': 't2 of 04\n',
      'raw/notes/sub-01.txt': 'note 1\n',
      'raw/notes/sub-04.txt': 'note 4\n',
      'templates/a.tpl': 'template a\n',
      'templates/b.tpl': 'template a\n',
      'inner/spec.yml': PAIR(''),
      'left/spec.yml': PAIR('1'),
      'full/spec.yml': PAIR('12'),
      'grouped/spec.yml': GROUP,
      'crossed/spec.yml': CROSS,
    });
    await ds.save('study');
  });
  afterAll(() => ds.cleanup());

  it('produces Pachyderm\'s datums and tells the command the keys', async () => {
    const { exitCode, report } = await ds.scheduleJson('-j', '2');
    expect(exitCode, failures(report)).toBe(0);
    const names = (p: string) => report.pipelines.find((x) => x.name === p)!.datums.map((d) => d.name).sort();
    expect(names('inner')).toEqual(['sub-02', 'sub-03']);
    expect(names('left')).toEqual(['sub-01', 'sub-02', 'sub-03']);
    expect(names('full')).toEqual(['sub-01', 'sub-02', 'sub-03', 'sub-04']);
    expect(names('grouped')).toEqual(['sub-01', 'sub-02', 'sub-03', 'sub-04']);
    expect(names('crossed')).toEqual(['sub-01+a.tpl', 'sub-01+b.tpl', 'sub-02+a.tpl', 'sub-02+b.tpl', 'sub-03+a.tpl', 'sub-03+b.tpl']);
    const read = (p: string) => readFileSync(path.join(ds.dir, p), 'utf8').trim();
    expect(read('inner/sub-02/seen')).toBe('key=sub-02sub-02 t1=raw/t1/sub-02 t2=raw/t2/sub-02');
    expect(read('left/sub-01/seen')).toBe('key=sub-01 t1=raw/t1/sub-01 t2=');
    expect(read('grouped/sub-01/members')).toBe('sub-01: raw/t1/sub-01 |  | raw/notes/sub-01.txt');
    // The two templates hold identical bytes: each subject's two cross datums share one key.
    expect(datum(report, 'crossed', 'sub-01+b.tpl').action).toBe('link');
    // inner, left and full have the same transform: their equal datums share one key across pipelines.
    expect(datum(report, 'left', 'sub-02').action).toBe('link');
    // 19 datums: full 4 + grouped 4 + crossed 3 computed; inner 2 + left 3 + crossed 3 linked.
    expect(report.counts).toMatchObject({ computed: 11, linked: 8 });
  });

  it('a change in one joined input recomputes only the datums with that key', async () => {
    ds.write({ 'raw/t2/sub-03/anat.nii': 't2 of 03, re-acquired\n' });
    await ds.save('new t2 for sub-03');
    const { report } = await ds.scheduleJson();
    const acted = report.pipelines.flatMap((p) => p.datums.filter((d) => d.action !== 'skip').map((d) => `${d.action} ${p.name}/${d.name}`));
    expect(acted.sort()).toEqual(['compute full/sub-03', 'compute grouped/sub-03', 'link inner/sub-03', 'link left/sub-03']);
    await ds.fsck();
  });

  it('previews the datums of an uncommitted spec', async () => {
    const file = path.join(path.dirname(ds.dir), 'try.yml');
    writeFileSync(file, PAIR('2'));
    const r = await ds.minipach('datums', 'right', '--spec', file, '--json');
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.datums.map((d: { name: string }) => d.name)).toEqual(['sub-02', 'sub-03', 'sub-04']);
    expect(out.datums[2].inputs).toEqual([{ name: 't2', path: 'raw/t2/sub-04', files: [{ path: 'raw/t2/sub-04/anat.nii', key: expect.stringMatching(/^MD5E-s9--/) }] }]);
    expect(await ds.git('status', '--porcelain')).toBe('');
  });

  it("unions of overlapping repos give the sum; a group over a join and extended globs run as Pachyderm's", async () => {
    ds.write({
      'both/spec.yml': `input:
  union:
    - pfs: { repo: raw/t1, glob: "/*" }
    - pfs: { repo: raw/t2, glob: "/*" }
transform:
  cmd: [sh, -c]
  stdin: ['ls "$MINIPACH_IN_t1$MINIPACH_IN_t2" > "$MINIPACH_OUT/files"; echo "$MINIPACH_IN_t1$MINIPACH_IN_t2" > "$MINIPACH_OUT/from"']
identity: path
`,
      'paired/spec.yml': `input:
  group:
    - join:
        - pfs: { repo: raw/t1, glob: "/(sub-*)", join_on: "$1", group_by: "all" }
        - pfs: { repo: raw/t2, glob: "/(sub-*)", join_on: "$1", group_by: "all" }
transform:
  cmd: [sh, -c]
  stdin: ['echo "$MINIPACH_IN_t1 / $MINIPACH_IN_t2" > "$MINIPACH_OUT/members"']
`,
      'notfirst/spec.yml': `input: { pfs: { repo: raw/t1, glob: "/!(sub-01)" } }
transform: { cmd: [sh, -c], stdin: ['cat "$MINIPACH_IN_t1"/* > "$MINIPACH_OUT/copy"'] }
identity: path
`,
    });
    await ds.save('union, group over join, extended glob');
    const { exitCode, report } = await ds.scheduleJson('-j', '2');
    expect(exitCode, failures(report)).toBe(0);
    const names = (p: string) => report.pipelines.find((x) => x.name === p)!.datums.map((d) => d.name).sort();
    expect(names('both')).toEqual(['sub-01', 'sub-02+t1', 'sub-02+t2', 'sub-03+t1', 'sub-03+t2', 'sub-04']);
    const read = (p: string) => readFileSync(path.join(ds.dir, p), 'utf8').trim();
    expect(read('both/sub-02+t2/from')).toBe('raw/t2/sub-02');
    expect(read('both/sub-01/from')).toBe('raw/t1/sub-01');
    expect(names('paired')).toEqual(['all']);
    expect(read('paired/all/members')).toBe('raw/t1/sub-02 raw/t1/sub-03 / raw/t2/sub-02 raw/t2/sub-03');
    expect(names('notfirst')).toEqual(['sub-02', 'sub-03']);
    await ds.fsck();
  });
});
