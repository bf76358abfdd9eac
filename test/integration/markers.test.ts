/**
 * Markers written before the shard directories (`<pipeline>/.minipach/datums/<name>.datum`, core/identity.ts)
 * still count: a dataset whose history was written that way is planned current, explained, recomputed and
 * cleaned up like one written today, and only datums that get their first marker use the shards.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markerPath } from '../../daemon/core/identity.js';
import { datum, ENV, failures, TestDataset } from '../helpers/dataset.js';

const COUNT = `input: {pfs: {repo: raw, glob: "/sub-*"}}
transform: {cmd: [sh, -c], stdin: ['wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n.txt"']}
`;
const SUMMARY = `input: {pfs: {repo: count, glob: "/"}}
transform: {cmd: [sh, -c], stdin: ['find "$MINIPACH_IN_count" -name "*.txt" | sort | xargs cat > "$MINIPACH_OUT/all.txt"']}
`;
const LEGACY = 'count/.minipach/datums';

describe('markers in the layout before the shards', () => {
  let ds: TestDataset;
  const markers = async () => (await ds.git('ls-tree', '-r', '--name-only', 'HEAD', 'count/.minipach')).split('\n').filter(Boolean).sort();

  beforeAll(async () => {
    ds = await TestDataset.create();
    ds.write({ 'raw/sub-01/data.txt': 'one\n', 'raw/sub-02/data.txt': 'two!\n', 'raw/sub-03/data.txt': 'three\n', 'count/spec.yml': COUNT, 'summary/spec.yml': SUMMARY });
    await ds.save('data and pipelines');
    const first = await ds.scheduleJson();
    expect(first.report.counts.computed, failures(first.report)).toBe(4);
    expect(await markers()).toEqual(['sub-01', 'sub-02', 'sub-03'].map((n) => markerPath('count', n)).sort());
    expect(markerPath('count', 'sub-01')).toMatch(/^count\/\.minipach\/shards\/[0-9a-f]{2}\/sub-01\.datum$/);
    // The same history as the version before the shards wrote it: every run commit rewritten with its marker
    // in the flat directory. The shared results ref names the old run commits, and the state directory's
    // caches the old commits: both go, as on a clone made of that history.
    const move = `git ls-files -s | sed "s#\tcount/.minipach/shards/[0-9a-f][0-9a-f]/#\t${LEGACY}/#" | GIT_INDEX_FILE=$GIT_INDEX_FILE.new git update-index --index-info && mv "$GIT_INDEX_FILE.new" "$GIT_INDEX_FILE"`;
    await ds.git('-c', 'core.hooksPath=/dev/null', 'filter-branch', '-f', '--index-filter', move, 'HEAD');
    await ds.git('update-ref', '-d', 'refs/minipach/results');
    const originals = await ds.git('for-each-ref', '--format=delete %(refname)', 'refs/original');
    await execa('git', ['update-ref', '--stdin'], { cwd: ds.dir, env: ENV, input: `${originals}\n` });
    await ds.git('reset', '-q', '--hard');
    ds.remove('.git/minipach');
    expect(await markers()).toEqual([`${LEGACY}/sub-01.datum`, `${LEGACY}/sub-02.datum`, `${LEGACY}/sub-03.datum`]);
  });
  afterAll(() => ds?.cleanup());

  it('plans them current and explains their outputs from the run commits that wrote them', async () => {
    const plan = (await ds.planJson()) as { pipelines: { datums: { name: string; action: string; marker: string }[] }[] };
    expect(plan.pipelines.flatMap((p) => p.datums.map((d) => [d.name, d.action]))).toEqual([['sub-01', 'skip'], ['sub-02', 'skip'], ['sub-03', 'skip'], ['', 'skip']]);
    const r = await ds.minipach('explain', '--json', 'summary/all.txt');
    expect(r.exitCode, r.stderr).toBe(0);
    const x = JSON.parse(r.stdout) as { datums: { pipeline: string; datum: string; run_commit: string }[] };
    expect(x.datums.map((d) => `${d.pipeline}/${d.datum}`).sort()).toEqual(['count/sub-01', 'count/sub-02', 'count/sub-03', 'summary/']);
    for (const d of x.datums) expect(await ds.git('log', '-1', '--format=%s', d.run_commit)).toMatch(/^\[DATALAD RUNCMD\]/);
  });

  it('a recomputed datum keeps its marker where it is, a new datum gets one in the shards, a vanished one loses its own', async () => {
    ds.write({ 'raw/sub-02/data.txt': 'two, changed\n', 'raw/sub-04/data.txt': 'four\n' }).remove('raw/sub-03');
    await ds.save('change sub-02, add sub-04, drop sub-03');
    const r = await ds.scheduleJson();
    expect(r.exitCode, failures(r.report)).toBe(0);
    expect(['sub-02', 'sub-04', 'sub-03'].map((n) => [datum(r.report, 'count', n).action, datum(r.report, 'count', n).status])).toEqual([['compute', 'ok'], ['compute', 'ok'], ['remove', 'ok']]);
    expect(await markers()).toEqual([`${LEGACY}/sub-01.datum`, `${LEGACY}/sub-02.datum`, markerPath('count', 'sub-04')]);
    expect((await ds.git('ls-tree', '--name-only', 'HEAD', 'count/')).split('\n')).toEqual(['count/.minipach', 'count/spec.yml', 'count/sub-01', 'count/sub-02', 'count/sub-04']);
    expect(readFileSync(path.join(ds.dir, 'summary/all.txt'), 'utf8')).toBe('4\n13\n5\n');
    const again = (await ds.planJson()) as { pipelines: { datums: { action: string }[] }[] };
    expect(new Set(again.pipelines.flatMap((p) => p.datums.map((d) => d.action)))).toEqual(new Set(['skip']));
    await ds.fsck();
  });
});

