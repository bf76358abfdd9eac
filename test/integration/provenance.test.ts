/**
 * Provenance and sharing, as a new user meets them: a dataset computed elsewhere and pushed to a bare
 * repository, then fresh clones that ask how files were made and reuse what was computed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datum, ENV, failures, TestDataset, treeKeys } from '../helpers/dataset.js';

const COUNT = `input:
  pfs: { repo: raw, glob: "/sub-*" }
transform:
  cmd: [sh, code/count.sh]
  code: [code/count.sh]
  env: { UNIT: bytes }
`;
const SUMMARY = `input:
  pfs: { repo: count, glob: "/" }
transform:
  cmd: [sh, -c]
  stdin:
    - 'find "$MINIPACH_IN_count" -name "*.txt" | sort | xargs cat > "$MINIPACH_OUT/all.txt"'
`;

/** Annex keys as datum keys record them: without the extension of *E backends. */
const bare = (k: string) => k.replace(/^([A-Z0-9]+E-s\d+--[0-9a-f]+)\..*$/, '$1');

interface ExplainJson {
  path: string;
  commit: string;
  file: { path: string; key: string; made_by?: string; added_in?: string };
  datums: {
    id: string;
    pipeline: string;
    datum: string;
    key: string;
    kind: string;
    commit: string;
    run_commit: string;
    rerun: string;
    linked_from?: { pipeline: string; datum: string; run_commit: string };
    transform?: { key: string; cmd?: string[]; env?: Record<string, string>; code?: [string, string][] };
    command?: string;
    resources?: { wall: number };
    inputs: { name: string; path: string; files: { path: string; key: string; made_by?: string; added_in?: string }[] }[];
    upstream: string[];
  }[];
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: ENV })).stdout.trim();
}

/** A plain clone of the bare repository, as a colleague makes it. */
async function cloneOf(origin: string, root: string, name: string): Promise<TestDataset> {
  const dir = path.join(root, name);
  await execa('git', ['clone', '-q', origin, dir], { env: ENV });
  await execa('git', ['annex', 'init', '-q', name], { cwd: dir, env: ENV });
  return new TestDataset(dir);
}

describe('explain and sharing across clones', () => {
  let a: TestDataset;
  let root: string;
  let origin: string;
  let dataCommit: string;

  beforeAll(async () => {
    a = await TestDataset.create();
    root = mkdtempSync(path.join(os.tmpdir(), 'minipach-share-'));
    origin = path.join(root, 'origin.git');
    a.write({
      'raw/sub-01/data.txt': 'same content\n',
      'raw/sub-02/data.txt': 'same content\n',
      'raw/sub-03/data.txt': 'different content\n',
      'code/count.sh': 'wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/$UNIT.txt"\n',
      'count/spec.yml': COUNT,
      'summary/spec.yml': SUMMARY,
    });
    dataCommit = await a.save('data, code and pipelines');
    await execa('git', ['clone', '-q', '--bare', a.dir, origin], { env: ENV });
    await a.git('remote', 'add', 'origin', origin);
    await a.git('fetch', '-q', 'origin');
    const { report } = await a.scheduleJson('-j', '2');
    expect(report.counts, failures(report)).toMatchObject({ computed: 3, linked: 1, failed: 0 });
    expect(report.warnings.join('\n')).toContain('results not shared with origin yet; to let other clones reuse them: minipach share');
    // As a user shares a dataset: the branch, the annex and its content, then the results ref.
    await execa('datalad', ['push', '--to', 'origin'], { cwd: a.dir, env: ENV });
    const share = await a.minipach('share');
    expect(share.stdout).toContain('origin: refs/minipach/results shared');
    expect((await a.scheduleJson()).report.warnings).toEqual([]);
  });
  afterAll(() => {
    a.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('explains a file two pipelines down on a fresh clone, with the inputs and keys actually used', async () => {
    // A plain git clone, git-annex not even initialised: explain needs git alone.
    const c = new TestDataset(path.join(root, 'fresh'));
    await execa('git', ['clone', '-q', origin, c.dir], { env: ENV });
    const r = await c.minipach('explain', 'summary/all.txt', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const x = JSON.parse(r.stdout) as ExplainJson;
    const byId = new Map(x.datums.map((d) => [d.id, d]));
    const top = x.datums[0]!;
    expect(x.file.made_by).toBe(top.id);
    // Keys as datum keys record them, so the file's key reads the same wherever it is an input.
    expect(x.file.key).toBe(bare(Object.values(await treeKeys(c.dir, 'HEAD', 'summary/all.txt'))[0]!));
    expect(top).toMatchObject({ pipeline: 'summary', datum: '', kind: 'computed' });
    expect(top.key).toBe(JSON.parse(await git(c.dir, 'show', 'HEAD:summary/.minipach/root.datum')).key);
    expect(await git(c.dir, 'log', '-1', '--format=%s', top.run_commit)).toBe('[DATALAD RUNCMD] minipach summary/.');
    expect(top.resources!.wall).toBeGreaterThan(0);

    // Its inputs are the count outputs as they were when it ran, key for key.
    const countAtRun = await treeKeys(c.dir, `${top.run_commit}^`, 'count');
    const outputs = Object.entries(countAtRun).filter(([p]) => p.endsWith('.txt'));
    const used = top.inputs.flatMap((i) => i.files);
    expect(used.map((f) => [f.path, f.key]).sort()).toEqual(outputs.map(([p, k]) => [p, bare(k)]).sort());
    expect(top.upstream.map((u) => byId.get(u)!.datum).sort()).toEqual(['sub-01', 'sub-02', 'sub-03']);

    // One level down: the count datums, their raw inputs (named with the commit that added them), and the transform.
    const codeKey = bare(Object.values(await treeKeys(c.dir, 'HEAD', 'code/count.sh'))[0]!);
    for (const name of ['sub-01', 'sub-02', 'sub-03']) {
      const d = x.datums.find((y) => y.pipeline === 'count' && y.datum === name)!;
      const file = used.find((f) => f.path === `count/${name}/bytes.txt`)!;
      expect(file.made_by).toBe(d.id);
      const raw = d.inputs.flatMap((i) => i.files);
      const rawKey = bare(Object.values(await treeKeys(c.dir, dataCommit, `raw/${name}/data.txt`))[0]!);
      expect(raw).toEqual([{ path: `raw/${name}/data.txt`, key: rawKey, added_in: dataCommit }]);
      expect(d.transform).toMatchObject({ cmd: ['sh', 'code/count.sh'], env: { UNIT: 'bytes' }, code: [['code/count.sh', codeKey]] });
      // A linked datum's command is the one of the run it reuses.
      expect(d.command).toContain(`MINIPACH_IN_raw=raw/${d.linked_from?.datum ?? name}`);
      expect(d.upstream).toEqual([]);
    }
    const sub02 = x.datums.find((y) => y.datum === 'sub-02')!;
    const sub01 = x.datums.find((y) => y.datum === 'sub-01')!;
    expect(sub01.kind).toBe('computed');
    expect(sub02).toMatchObject({ kind: 'linked', linked_from: { pipeline: 'count', datum: 'sub-01', run_commit: sub01.run_commit } });
    expect(sub02.key).toBe(sub01.key);

    // The rerun command it prints replays the run on the plain clone, without minipach, to the same keys.
    expect((await c.minipach('plan')).stderr).toContain(`is a clone of a dataset whose annex is not initialised here; run: git -C ${c.dir} annex init`);
    await execa('git', ['annex', 'init', '-q'], { cwd: c.dir, env: ENV });
    const sub03 = x.datums.find((y) => y.datum === 'sub-03')!;
    const [cmd, ...args] = sub03.rerun.split(' ');
    await execa(cmd!, args, { cwd: c.dir, env: ENV });
    expect(await treeKeys(c.dir, 'HEAD', 'count/sub-03')).toEqual(await treeKeys(c.dir, sub03.run_commit, 'count/sub-03'));
    await git(c.dir, 'checkout', '-q', 'master');

    // The text form names raw data and the reproduce command.
    const text = await c.minipach('explain', 'summary/all.txt');
    expect(text.stdout).toContain(`raw data, last changed in ${dataCommit.slice(0, 12)}`);
    expect(text.stdout).toContain(`reproduce: ${sub03.rerun}`);
    const rawFile = await c.minipach('explain', 'raw/sub-01/data.txt');
    expect(rawFile.stdout).toContain(`not a minipach output: raw data, last changed in commit ${dataCommit}`);
    // A `/` datum writes into the pipeline's own directory, but its spec.yml is never an output.
    expect((await c.minipach('explain', 'summary/spec.yml')).stdout).toContain('not a minipach output');
    const missing = await c.minipach('explain', 'count/sub-09/bytes.txt');
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/does not exist in commit/);
  });

  it('--prov prints PROV-JSON whose relations connect the entities and activities it declares', async () => {
    const r = await a.minipach('explain', 'summary/all.txt', '--prov');
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, Record<string, Record<string, unknown>>>;
    for (const section of ['prefix', 'entity', 'activity', 'agent', 'used', 'wasGeneratedBy', 'wasAssociatedWith']) expect(doc[section], section).toBeTypeOf('object');
    const entities = doc['entity']!;
    const activities = doc['activity']!;
    const prefixes = Object.keys(doc['prefix']!);
    for (const id of [...Object.keys(entities), ...Object.keys(activities)]) expect(prefixes).toContain(id.split(':')[0]);
    const used = Object.values(doc['used']!);
    const generated = Object.values(doc['wasGeneratedBy']!);
    expect(used.length).toBe(3 + 3); // summary read three count outputs; each count datum read one raw file
    for (const u of used) {
      expect(activities).toHaveProperty([u['prov:activity'] as string]);
      expect(entities).toHaveProperty([u['prov:entity'] as string]);
    }
    for (const g of generated) {
      expect(activities).toHaveProperty([g['prov:activity'] as string]);
      expect(entities).toHaveProperty([g['prov:entity'] as string]);
    }
    // The explained file was generated by the summary run, which used the count outputs, which were generated too.
    const all = Object.keys(entities).find((e) => e.includes('summary/all.txt'))!;
    const run = generated.find((g) => g['prov:entity'] === all)!['prov:activity'] as string;
    expect(activities[run]!['prov:label']).toBe('summary/.');
    const countInputs = used.filter((u) => u['prov:activity'] === run).map((u) => u['prov:entity']);
    for (const e of countInputs) expect(generated.some((g) => g['prov:entity'] === e)).toBe(true);
    const raw = Object.entries(entities).filter(([, v]) => v['minipach:addedInCommit']);
    expect(raw.map(([, v]) => v['minipach:path']).sort()).toEqual(['raw/sub-01/data.txt', 'raw/sub-02/data.txt', 'raw/sub-03/data.txt']);
    expect(Object.values(doc['wasInformedBy']!).length).toBe(1); // the link of sub-02 to the sub-01 run
  });

  it('a second clone on its own branch reuses the fetched results, computes only what is new, and gets their content from the remote', async () => {
    const b = await cloneOf(origin, root, 'second');
    // Their branch starts from the data alone, without the results commits, and adds a subject.
    await b.git('checkout', '-q', '-b', 'mine', dataCommit);
    b.write({ 'raw/sub-04/data.txt': 'a new subject\n' });
    await b.save('sub-04');
    const plan = JSON.parse((await b.minipach('plan', '--json')).stdout);
    const actions = plan.pipelines.find((p: { name: string }) => p.name === 'count').datums.map((d: { name: string; action: string }) => `${d.name}:${d.action}`);
    expect(actions).toEqual(['sub-01:link', 'sub-02:link', 'sub-03:link', 'sub-04:compute']);

    const { report } = await b.scheduleJson();
    expect(report.counts, failures(report)).toMatchObject({ computed: 2, linked: 3, failed: 0 });
    expect(datum(report, 'count', 'sub-03').action).toBe('link');
    expect(datum(report, 'summary', '').action).toBe('compute');
    // The reused outputs carry the same keys as the colleague's, and their content comes from the remote.
    expect(await b.keysUnder('count/sub-03')).toEqual(await a.keysUnder('count/sub-03'));
    await execa('git', ['annex', 'get', '-q', 'count/sub-01', 'count/sub-03'], { cwd: b.dir, env: ENV });
    expect(await git(b.dir, 'show', 'HEAD:summary/.minipach/root.datum')).toContain('"pipeline":"summary"');
    const x = JSON.parse((await b.minipach('explain', 'count/sub-03/bytes.txt', '--json')).stdout) as ExplainJson;
    const theirs = (await git(a.dir, 'log', '-1', '--format=%H', '--grep=^\\[DATALAD RUNCMD\\] minipach count/sub-03'));
    expect(x.datums[0]).toMatchObject({ kind: 'linked', linked_from: { pipeline: 'count', datum: 'sub-03', run_commit: theirs } });
    await b.fsck();

    // Both clones share: the remote's results ref becomes the union of theirs (a merge, nothing forced),
    // and the first clone, fetching it, holds the second one's results too.
    const keysOf = async (dir: string, ref: string) => (await git(dir, 'ls-tree', '-d', '-r', '--name-only', ref)).split('\n').filter((p) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(p)).map((p) => p.slice(3));
    const before = await keysOf(origin, 'refs/minipach/results');
    const mine = await keysOf(b.dir, 'refs/minipach/results');
    expect(mine).toHaveLength(2); // sub-04 and the new summary
    expect((await b.minipach('share')).stdout).toContain('origin: refs/minipach/results shared');
    const union = await keysOf(origin, 'refs/minipach/results');
    expect(union.sort()).toEqual([...before, ...mine].sort());
    expect((await git(origin, 'log', '-1', '--format=%P', 'refs/minipach/results')).split(' ')).toHaveLength(2);
    expect((await a.minipach('share')).exitCode).toBe(0);
    expect((await keysOf(a.dir, 'refs/minipach/results')).sort()).toEqual(union.sort());
  });

  it('a shared result whose content no remote has is computed again, not linked to a dangling key', async () => {
    // The colleague computes a new subject and shares the branch and the results ref, but never the content.
    a.write({ 'raw/sub-05/data.txt': 'kept on a laptop\n' });
    await a.save('sub-05');
    const { report: theirs } = await a.scheduleJson();
    expect(datum(theirs, 'count', 'sub-05').action).toBe('compute');
    await a.git('push', '-q', 'origin', 'master', 'git-annex');
    expect((await a.minipach('share')).exitCode).toBe(0);

    const b = await cloneOf(origin, root, 'third');
    await b.git('checkout', '-q', '-b', 'mine', dataCommit);
    b.write({ 'raw/sub-05/data.txt': 'kept on a laptop\n' });
    await b.save('the same sub-05');
    const { report } = await b.scheduleJson();
    const d = datum(report, 'count', 'sub-05');
    expect(d.action).toBe('compute');
    expect(d.reason).toMatch(/cannot be retrieved from this clone or any of its remotes/);
    expect(datum(report, 'count', 'sub-03').action).toBe('link'); // what the remote has is still reused
    await b.fsck();
  });
});
