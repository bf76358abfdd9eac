import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createDatums } from '../../daemon/core/datums.js';
import { datumEnv } from '../../daemon/core/command.js';
import { planDataset } from '../../daemon/core/plan.js';
import { CMDEXEC, containersOfConfig } from '../../daemon/core/container.js';
import { EMPTY_INDEX } from '../../daemon/core/result-index.js';
import { entriesUnder } from '../../daemon/core/tree.js';
import { fakeSnapshot, specOf, specs } from '../helpers/fake-tree.js';

const study = fakeSnapshot({
  'raw/t1/sub-01/T1.nii': 'A1',
  'raw/t1/sub-02/T1.nii': 'A2',
  'raw/t1/sub-03/T1.nii': 'A3',
  'raw/t2/sub-02/T2.nii': 'B2',
  'raw/t2/sub-03/T2.nii': 'B3',
  'raw/t2/sub-04/T2.nii': 'B4',
  'models/m1.bin': 'M1',
  'models/m2.bin': 'M2',
});
const view = (repo: string) => entriesUnder(study, repo);
const datums = (yaml: string) => createDatums(specOf('p', yaml + 'transform: { cmd: [sh] }\n').input, view);
const names = (yaml: string) => datums(yaml).map((d) => d.name);
const join = (o1: boolean, o2: boolean) => `input:
  join:
    - pfs: { repo: raw/t1, glob: "/(sub-*)", join_on: "$1", outer_join: ${o1} }
    - pfs: { repo: raw/t2, glob: "/(sub-*)", join_on: "$1", outer_join: ${o2} }
`;

describe('input combinators', () => {
  it('inner join: a datum only where every input has the key', () => {
    const ds = datums(join(false, false));
    expect(ds.map((d) => d.name)).toEqual(['sub-02', 'sub-03']);
    expect(ds[0]!.joinKey).toBe('sub-02');
    expect(ds[0]!.inputs.map((i) => i.path)).toEqual(['raw/t1/sub-02', 'raw/t2/sub-02']);
  });
  it('left, right and full outer joins add the outer inputs\' unmatched keys', () => {
    expect(names(join(true, false))).toEqual(['sub-01', 'sub-02', 'sub-03']);
    expect(names(join(false, true))).toEqual(['sub-02', 'sub-03', 'sub-04']);
    expect(names(join(true, true))).toEqual(['sub-01', 'sub-02', 'sub-03', 'sub-04']);
    const left = datums(join(true, false));
    expect(left[0]!.inputs.map((i) => i.name)).toEqual(['t1']);
  });
  it('a key matching several files of one input gives their cross product, with distinct names', () => {
    const snap = fakeSnapshot({ 'a/k1-x': 'X', 'a/k1-y': 'Y', 'b/k1': 'Z' });
    const ds = createDatums(specOf('p', 'input:\n  join:\n    - pfs: { repo: a, glob: "/(*)-*", join_on: "$1" }\n    - pfs: { repo: b, glob: "/(*)", join_on: "$1" }\ntransform: { cmd: [sh] }\n').input, (r) => entriesUnder(snap, r));
    expect(ds.map((d) => d.name)).toEqual(['k1+k1-x+k1', 'k1+k1-y+k1']);
  });
  it('group: every match of every input with the key is one datum (3 inputs)', () => {
    const ds = datums(`input:
  group:
    - pfs: { repo: raw/t1, glob: "/(sub-*)", group_by: "$1" }
    - pfs: { repo: raw/t2, glob: "/(sub-*)", group_by: "$1" }
    - pfs: { repo: models, glob: "/m(*).bin", group_by: "sub-0$1", name: model }
`);
    expect(ds.map((d) => [d.name, d.inputs.map((i) => i.path)])).toEqual([
      ['sub-01', ['raw/t1/sub-01', 'models/m1.bin']],
      ['sub-02', ['raw/t1/sub-02', 'raw/t2/sub-02', 'models/m2.bin']],
      ['sub-03', ['raw/t1/sub-03', 'raw/t2/sub-03']],
      ['sub-04', ['raw/t2/sub-04']],
    ]);
    expect(ds[1]!.groupKey).toBe('sub-02');
  });
  it('cross: every combination; two "/" globs give exactly one datum', () => {
    const ds = datums('input:\n  cross:\n    - pfs: { repo: raw/t1, glob: "/*" }\n    - pfs: { repo: models, glob: "/*" }\n');
    expect(ds.map((d) => d.name)).toEqual(['sub-01+m1.bin', 'sub-01+m2.bin', 'sub-02+m1.bin', 'sub-02+m2.bin', 'sub-03+m1.bin', 'sub-03+m2.bin']);
    const one = datums('input:\n  cross:\n    - pfs: { repo: raw/t1, glob: "/" }\n    - pfs: { repo: models, glob: "/" }\n');
    expect(one.map((d) => [d.name, d.inputs.length])).toEqual([['', 2]]);
  });
  it("union: the sum of the inputs' datums; inputs may share a name", () => {
    const ds = datums('input:\n  union:\n    - pfs: { repo: raw/t1, glob: "/*/*", name: scan }\n    - pfs: { repo: models, glob: "/*", name: scan }\n');
    expect(ds.length).toBe(3 + 2);
  });
  it('union of repos holding the same subjects: the sum, colliding names made unique by their input, the others unchanged', () => {
    const plan = planDataset({ snapshot: study, specs: specs({ p: 'input:\n  union:\n    - pfs: { repo: raw/t1, glob: "/*" }\n    - pfs: { repo: raw/t2, glob: "/*" }\ntransform: { cmd: [sh] }\n' }), index: EMPTY_INDEX });
    expect(plan.pipelines[0]!.status).toBe('ready');
    expect(plan.pipelines[0]!.datums.map((d) => [d.name, d.datum!.inputs.map((i) => i.path)])).toEqual([
      ['sub-01', ['raw/t1/sub-01']],
      ['sub-02+t1', ['raw/t1/sub-02']],
      ['sub-03+t1', ['raw/t1/sub-03']],
      ['sub-02+t2', ['raw/t2/sub-02']],
      ['sub-03+t2', ['raw/t2/sub-03']],
      ['sub-04', ['raw/t2/sub-04']],
    ]);
    expect(plan.pipelines[0]!.datums.map((d) => d.outputDir)).toContain('p/sub-02+t1');
  });
  it('a union of a repo with itself gives every datum twice, told apart by the child number', () => {
    expect(names('input:\n  union:\n    - pfs: { repo: models, glob: "/*" }\n    - pfs: { repo: models, glob: "/*" }\n')).toEqual(['m1.bin+models.1', 'm2.bin+models.1', 'm1.bin+models.2', 'm2.bin+models.2']);
  });
  it('a union whose inputs share a name, nested in a cross', () => {
    const spec = 'input:\n  cross:\n    - union:\n        - pfs: { repo: raw/t1, glob: "/sub-01", name: scan }\n        - pfs: { repo: raw/t2, glob: "/sub-04", name: scan }\n    - pfs: { repo: models, glob: "/*" }\n';
    expect(datums(spec).map((d) => [d.name, d.inputs.map((i) => `${i.name}=${i.path}`)])).toEqual([
      ['sub-01+m1.bin', ['scan=raw/t1/sub-01', 'models=models/m1.bin']],
      ['sub-01+m2.bin', ['scan=raw/t1/sub-01', 'models=models/m2.bin']],
      ['sub-04+m1.bin', ['scan=raw/t2/sub-04', 'models=models/m1.bin']],
      ['sub-04+m2.bin', ['scan=raw/t2/sub-04', 'models=models/m2.bin']],
    ]);
    // Names must still differ between the children of a cross.
    expect(() => specOf('p', 'input:\n  cross:\n    - pfs: { repo: raw/t1, glob: "/*", name: x }\n    - pfs: { repo: raw/t2, glob: "/*", name: x }\ntransform: { cmd: [sh] }\n')).toThrow(/input name "x" is used twice in a cross/);
  });
  it('a group over a join: each input of each joined datum is grouped by its own group_by', () => {
    const ds = datums(`input:
  group:
    - join:
        - pfs: { repo: raw/t1, glob: "/(sub-0)(*)", join_on: "$1$2", group_by: "odd$2" }
        - pfs: { repo: raw/t2, glob: "/(sub-0)(*)", join_on: "$1$2", group_by: "odd$2" }
    - pfs: { repo: models, glob: "/m(*).bin", group_by: "odd$1" }
`);
    expect(ds.map((d) => [d.name, d.inputs.map((i) => i.path)])).toEqual([
      ['odd1', ['models/m1.bin']],
      ['odd2', ['raw/t1/sub-02', 'raw/t2/sub-02', 'models/m2.bin']],
      ['odd3', ['raw/t1/sub-03', 'raw/t2/sub-03']],
    ]);
    expect(ds[1]!.groupKey).toBe('odd2');
  });
  it("an outer join of three inputs: for a key some inputs lack, only the outer inputs' files are kept (Pachyderm's merge)", () => {
    const snap = fakeSnapshot({ 'a/k1': 'A1', 'a/k2': 'A2', 'a/k3': 'A3', 'b/k1': 'B1', 'b/k2': 'B2', 'c/k1': 'C1', 'c/k4': 'C4' });
    const three = (outer: [boolean, boolean, boolean]) =>
      createDatums(
        specOf('p', `input:\n  join:\n${['a', 'b', 'c'].map((r, i) => `    - pfs: { repo: ${r}, glob: "/(*)", join_on: "$1", outer_join: ${outer[i]} }\n`).join('')}transform: { cmd: [sh] }\n`).input,
        (r) => entriesUnder(snap, r),
      ).map((d) => [d.name, d.inputs.map((i) => i.path)]);
    // a and c outer, b inner: k1 complete; k2 lacks c, so only a's file; k3 only in a; k4 only in c.
    expect(three([true, false, true])).toEqual([
      ['k1', ['a/k1', 'b/k1', 'c/k1']],
      ['k2', ['a/k2']],
      ['k3', ['a/k3']],
      ['k4', ['c/k4']],
    ]);
    // Only b outer: a key b lacks is dropped; k2 (in a and b, not c) keeps b's file alone.
    expect(three([false, true, false])).toEqual([
      ['k1', ['a/k1', 'b/k1', 'c/k1']],
      ['k2', ['b/k2']],
    ]);
    expect(three([false, false, false])).toEqual([['k1', ['a/k1', 'b/k1', 'c/k1']]]);
  });
  it('nests: a cross of a join and a pfs input', () => {
    const ds = datums(`input:
  cross:
    - join:
        - pfs: { repo: raw/t1, glob: "/(sub-*)", join_on: "$1" }
        - pfs: { repo: raw/t2, glob: "/(sub-*)", join_on: "$1" }
    - pfs: { repo: models, glob: "/*" }
`);
    expect(ds.map((d) => d.name)).toEqual(['sub-02+m1.bin', 'sub-02+m2.bin', 'sub-03+m1.bin', 'sub-03+m2.bin']);
    expect(ds[0]!.inputs.map((i) => i.name)).toEqual(['t1', 't2', 'models']);
  });
  it('the command is told the join and group keys, Pachyderm\'s way and minipach\'s', () => {
    const spec = specOf('p', join(false, false) + 'transform: { cmd: [sh] }\n');
    const d = createDatums(spec.input, view)[0]!;
    const env = datumEnv(spec, d, 'p/sub-02');
    expect(env).toMatchObject({ t1: 'raw/t1/sub-02', t2: 'raw/t2/sub-02', MINIPACH_IN_t1: 'raw/t1/sub-02', PACH_DATUM_t1_JOIN_ON: 'sub-02', PACH_DATUM_t2_JOIN_ON: 'sub-02', MINIPACH_JOIN_KEY: 'sub-02', MINIPACH_OUT: 'p/sub-02' });
  });
  it('a glob matching nothing gives zero datums and a note, not an error', () => {
    const plan = planDataset({ snapshot: study, specs: specs({ p: 'input: { pfs: { repo: raw/t1, glob: "/ses-*" } }\ntransform: { cmd: [sh] }\n' }), index: EMPTY_INDEX });
    expect(plan.pipelines[0]!.status).toBe('ready');
    expect(plan.pipelines[0]!.datums).toEqual([]);
    expect(plan.pipelines[0]!.notes).toContain('the input matches no datums');
  });
  it('a join on one file-level key recomputes only the datums with that key', () => {
    const s = specs({ p: join(true, true) + 'transform: { cmd: [sh] }\n' });
    const before = planDataset({ snapshot: study, specs: s, index: EMPTY_INDEX });
    const changedSnap = fakeSnapshot({ ...Object.fromEntries(study.entries.map((e) => [e.path, e.contentKey])), 'raw/t2/sub-03/T2.nii': 'B3-new' });
    const after = planDataset({ snapshot: changedSnap, specs: s, index: EMPTY_INDEX });
    const keys = (p: typeof before) => Object.fromEntries(p.pipelines[0]!.datums.map((d) => [d.name, d.key]));
    const a = keys(before);
    const b = keys(after);
    expect(Object.keys(a).filter((n) => a[n] !== b[n])).toEqual(['sub-03']);
  });
});

describe('Pachyderm example specs, on data built for them', () => {
  const fixture = (name: string) => readFileSync(new URL(`../../../shared/fixtures/pachyderm-specs/${name}.json`, import.meta.url), 'utf8');
  // Their images, held by the dataset as `minipach containers add NAME --from <archive> --url <ref>@sha256:...`
  // leaves them: a spec naming an image runs (and plans) only once the dataset holds it, pinned.
  const IMAGES = { opencv: 'pachyderm/opencv:1.0', joins: 'pachyderm/example-joins-inner-outer:2.1.0', magick: 'dpokidov/imagemagick:7.1.0-23' };
  const imageFiles = Object.fromEntries(Object.keys(IMAGES).map((n) => [`.datalad/environments/${n}/image`, `IMG-${n}`]));
  const containers = containersOfConfig(new Map(Object.entries(IMAGES).flatMap(([n, ref]) => [[`datalad.containers.${n}.image`, `.datalad/environments/${n}/image`], [`datalad.containers.${n}.url`, `${ref}@sha256:${'0'.repeat(64)}`], [`datalad.containers.${n}.cmdexec`, CMDEXEC.podman]] as const)));
  it('edges: one datum per image; montage: one datum crossing images with edges\' outputs', () => {
    const files = { 'images/a.png': 'I1', 'images/b.png': 'I2', 'edges/spec.yml': 'S', 'edges/a.png/e.png': 'E1', 'edges/b.png/e.png': 'E2' };
    // Without their images in the dataset, both are refused, saying how to add them.
    const without = planDataset({ snapshot: fakeSnapshot(files), specs: specs({ edges: fixture('edges'), montage: fixture('montage') }), index: EMPTY_INDEX });
    expect(without.pipelines[0]!.status).toBe('invalid');
    expect(without.pipelines[0]!.error!.message).toMatch(/transform\.image.*pachyderm\/opencv:1\.0.*without a digest.*containers add/s);
    const snap = fakeSnapshot({ ...files, ...imageFiles }, [['edges', 'a.png', 'k1'], ['edges', 'b.png', 'k2']]);
    const plan = planDataset({ snapshot: snap, specs: specs({ edges: fixture('edges'), montage: fixture('montage') }), index: EMPTY_INDEX, containers });
    expect(plan.pipelines.map((p) => [p.name, p.status, p.datums.map((d) => d.name)])).toEqual([
      ['edges', 'ready', ['a.png', 'b.png']],
      ['montage', 'ready', ['']],
    ]);
    const montage = plan.pipelines[1]!.datums[0]!;
    expect(montage.action).toBe('blocked'); // edges' outputs are about to change (their keys differ from k1/k2)
    expect(montage.datum!.inputs.map((i) => [i.name, i.files.map((f) => f.rel)])).toEqual([['images', ['a.png', 'b.png']], ['edges', ['a.png/e.png', 'b.png/e.png']]]);
  });
  it('inner_join: stores and purchases paired by store id', () => {
    const snap = fakeSnapshot({ 'stores/STOREID1.txt': 'S1', 'stores/STOREID2.txt': 'S2', 'stores/STOREID3.txt': 'S3', 'purchases/P1_STOREID1.txt': 'P1', 'purchases/P2_STOREID1.txt': 'P2', 'purchases/P3_STOREID3.txt': 'P3', 'purchases/P4_STOREID9.txt': 'P4', ...imageFiles });
    const plan = planDataset({ snapshot: snap, specs: specs({ inner_join: fixture('inner_join') }), index: EMPTY_INDEX, containers });
    expect(plan.pipelines[0]!.datums.map((d) => [d.name, d.datum!.inputs.map((i) => i.path)])).toEqual([
      ['1+STOREID1.txt+P1_STOREID1.txt', ['stores/STOREID1.txt', 'purchases/P1_STOREID1.txt']],
      ['1+STOREID1.txt+P2_STOREID1.txt', ['stores/STOREID1.txt', 'purchases/P2_STOREID1.txt']],
      ['3', ['stores/STOREID3.txt', 'purchases/P3_STOREID3.txt']],
    ]);
  });
  it('group_by_patient: every lab result of a patient in one datum', () => {
    const snap = fakeSnapshot({ 'labresults/T1-PATID1-A.txt': 'L1', 'labresults/T2-PATID1-B.txt': 'L2', 'labresults/T3-PATID2-A.txt': 'L3', ...imageFiles });
    const plan = planDataset({ snapshot: snap, specs: specs({ group_by_patient: fixture('group_by_patient') }), index: EMPTY_INDEX, containers });
    const ds = plan.pipelines[0]!.datums;
    expect(ds.map((d) => [d.name, d.datum!.inputs.length])).toEqual([['1', 2], ['2', 1]]);
    expect(plan.pipelines[0]!.notes.join()).toMatch(/branch is ignored/);
  });
});
