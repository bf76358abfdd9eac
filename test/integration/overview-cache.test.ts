/**
 * The daemon's dashboard keeps the part of an overview read from git (the plan at the head: about a second at
 * 10^5 datums) while what the plan is read from holds, and rebuilds only the queue's overlay on job events.
 * Work in progress (run refs) does not count; a new commit, a failure or a results ref does.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../daemon/adapters/dataset.js';
import { OverviewSource } from '../../daemon/schedule/overview.js';
import { TestDataset } from '../helpers/dataset.js';

const COUNT = 'input: {pfs: {repo: raw, glob: "/*"}}\ntransform: {cmd: [sh, -c], stdin: [\'wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n"\']}\n';

describe("the dashboard's overview", () => {
  let ds: TestDataset;
  beforeAll(async () => {
    ds = await TestDataset.create();
    ds.write({ 'count/spec.yml': COUNT, 'raw/a/data.txt': 'a\n', 'raw/b/data.txt': 'bb\n' });
    await ds.save('two subjects');
  });
  afterAll(() => ds?.cleanup());

  it('reads git again only when what the plan is read from changed', async () => {
    const dataset = await openDataset(ds.dir);
    const { datasetOverviewFromGit } = await import('../../daemon/schedule/overview.js');
    let reads = 0;
    const source = new OverviewSource(dataset, 'ds', (d) => (reads++, datasetOverviewFromGit(d)));
    const first = await source.overview({});
    const a = first.pipelines[0]!.datums.find((d) => d.name === 'a')!;
    expect(a.state).toBe('queued');
    // A job event: the overlay follows (datum a runs), git is not read again.
    const running = await source.overview({ jobs: [{ key: a.key, state: 'active', attempts: 1 }] });
    expect(running.pipelines[0]!.datums.find((d) => d.name === 'a')!.state).toBe('running');
    expect(reads).toBe(1);
    // A run ref (a worker's result waiting to be integrated) is not something the plan reads.
    await ds.git('update-ref', 'refs/minipach/runs/test', await ds.head());
    await source.overview({});
    expect(reads).toBe(1);
    // A new commit is.
    ds.write({ 'raw/c/data.txt': 'ccc\n' });
    await ds.save('a third subject');
    const third = await source.overview({});
    expect(reads).toBe(2);
    expect(third.pipelines[0]!.datums).toHaveLength(3);
    // So is a failure recorded.
    writeFileSync(path.join(dataset.stateDir, 'failures.json'), '{}\n');
    await source.overview({});
    expect(reads).toBe(3);
  });
});
