/**
 * Clones as `datalad clone` makes them: a relative remote path, content only on the origin. Scratch
 * checkouts resolve the remote as the dataset does, and when content cannot be got, datalad's and
 * git-annex's own words reach the failure record and `minipach logs`.
 */
import { readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { datum, ENV, TestDataset } from '../helpers/dataset.js';

const COUNT = 'input: {pfs: {repo: raw, glob: "/*"}}\ntransform: {cmd: [sh, -c], stdin: [\'wc -c < "$MINIPACH_IN_raw" > "$MINIPACH_OUT/n"\']}\n';

describe('clones with a relative remote', () => {
  let origin: TestDataset;
  afterEach(() => origin?.cleanup());

  async function relativeClone(): Promise<TestDataset> {
    origin = await TestDataset.create();
    origin.write({ 'raw/a': 'hello\n', 'raw/b': 'world!\n', 'count/spec.yml': COUNT });
    await origin.save();
    const parent = path.dirname(origin.dir);
    await execa('datalad', ['clone', 'ds', 'mine'], { cwd: parent, env: ENV });
    const mine = new TestDataset(path.join(parent, 'mine'));
    expect((await mine.git('remote', 'get-url', 'origin')).trim()).toBe('../ds');
    return mine;
  }

  it('computes: inputs are got from the relative remote in scratch checkouts', async () => {
    const mine = await relativeClone();
    const { exitCode, report } = await mine.scheduleJson();
    expect(exitCode).toBe(0);
    expect(report.counts.computed).toBe(2);
    expect(readFileSync(path.join(mine.dir, 'count/a/n'), 'utf8').trim()).toBe('6');
    await mine.fsck();
  });

  it("content nobody can get: the datum fails with datalad's and git-annex's own message, in the report and in logs", async () => {
    const mine = await relativeClone();
    // The spec is here; then the origin moves away, and the clone's remote names nothing.
    await mine.git('annex', 'get', 'count/spec.yml');
    renameSync(origin.dir, `${origin.dir}-moved`);
    origin = new TestDataset(`${origin.dir}-moved`);
    const { exitCode, report } = await mine.scheduleJson();
    expect(exitCode).toBe(1);
    const a = datum(report, 'count', 'a');
    expect(a.status).toBe('failed');
    expect(a.reason).toMatch(/^could not get the inputs' content: get raw\/a: error: \S+/);
    expect(a.stderrTail).toMatch(/raw\/a/);
    const logs = await mine.minipach('logs', 'count/a');
    expect(logs.stdout).toMatch(/--- git-annex ---\nget raw\/a: error: \S+/);
    // The datalad executor says it in datalad's words.
    const viaDatalad = await mine.scheduleJson('--executor', 'datalad');
    expect(datum(viaDatalad.report, 'count', 'a').reason).toMatch(/^datalad run failed: get .*raw\/a: (impossible|error)/);
    expect((await mine.minipach('logs', 'count/a')).stdout).toMatch(/--- datalad ---\nget .*raw\/a: (impossible|error): \S+/);
  });
});
