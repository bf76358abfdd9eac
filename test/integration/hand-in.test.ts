/**
 * A worker's hand-in, against a real origin: results finished together go in one push, their run commits on
 * their own refs and every annexed output's content in the origin's annex; an origin that is away fails
 * them all with what went wrong.
 */
import { chmodSync, mkdirSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { openDataset } from '../../daemon/adapters/dataset.js';
import type { CommitSpec } from '../../daemon/adapters/git-format.js';
import { HandIn } from '../../daemon/exec/hand-in.js';
import { runRef } from '../../daemon/results/branch.js';
import { ENV, TestDataset } from '../helpers/dataset.js';

describe('hand-in', () => {
  let origin: TestDataset;
  afterEach(() => origin?.cleanup());

  /** An origin that counts the pushes it receives, and a worker's clone of it with two results' outputs annexed. */
  async function setUp() {
    origin = await TestDataset.create();
    origin.write({ 'raw/a': 'a\n', 'raw/b': 'b\n' });
    await origin.save();
    const hooks = path.join(path.dirname(origin.dir), 'hooks');
    mkdirSync(hooks);
    writeFileSync(path.join(hooks, 'post-receive'), `#!/bin/sh\necho push >> ${path.join(hooks, 'pushes')}\n`);
    chmodSync(path.join(hooks, 'post-receive'), 0o755);
    await origin.git('config', 'core.hooksPath', hooks);
    const clone = path.join(path.dirname(origin.dir), 'worker');
    await execa('git', ['clone', '-q', origin.dir, clone], { env: ENV });
    await execa('git', ['annex', 'init', '-q', 'worker'], { cwd: clone, env: ENV });
    const base = (await execa('git', ['rev-parse', 'HEAD'], { cwd: clone })).stdout.trim();
    const results = new Map<string, { write: CommitSpec; keys: string[] }>();
    for (const datum of ['a', 'b', 'c']) {
      mkdirSync(path.join(clone, 'count', datum), { recursive: true });
      const files = ['n', 'm'].map((f) => `count/${datum}/${f}`);
      for (const f of files) writeFileSync(path.join(clone, f), `${datum} ${f} ${Math.random()}\n`);
      await execa('git', ['annex', 'add', '-q', ...files], { cwd: clone, env: ENV });
      const links = files.map((f) => ({ path: f, target: readlinkSync(path.join(clone, f)) }));
      results.set(`key-${datum}`, {
        write: { from: base, message: `run ${datum}`, changes: links.map((l) => ({ path: l.path, mode: '120000', content: Buffer.from(l.target) })) },
        keys: links.map((l) => path.basename(l.target)),
      });
    }
    return { ds: await openDataset(clone), results, pushes: async () => (await execa('cat', [path.join(hooks, 'pushes')], { reject: false })).stdout.split('\n').filter(Boolean).length };
  }

  it('results finished together go in one push: each on its run ref, all their annexed content in the origin', async () => {
    const { ds, results, pushes } = await setUp();
    const handIn = new HandIn(ds);
    // The first goes at once; the two that come while it is on its way go together after it.
    const commits = await Promise.all([...results].map(([key, r]) => handIn.submit(key, { run: { write: r.write }, annexKeys: r.keys })));
    expect(await pushes()).toBe(2);
    for (const [i, [key, r]] of [...results].entries()) {
      expect((await origin.git('rev-parse', runRef(key))).trim()).toBe(commits[i]);
      expect((await origin.git('ls-tree', '-r', '--name-only', commits[i]!)).split('\n')).toEqual(expect.arrayContaining(r.write.changes.map((c) => c.path)));
      // Two annexed outputs per result: every one of their keys has its content in the origin.
      for (const k of r.keys) expect((await origin.git('annex', 'contentlocation', k)).trim()).not.toBe('');
    }
  });

  it('an origin that is away: every result waiting fails with what went wrong, and nothing is half there', async () => {
    const { ds, results } = await setUp();
    renameSync(origin.dir, `${origin.dir}-away`);
    const handIn = new HandIn(ds);
    const tries = [...results].map(([key, r]) => handIn.submit(key, { run: { write: r.write }, annexKeys: r.keys }));
    for (const t of await Promise.allSettled(tries)) {
      expect(t.status).toBe('rejected');
      expect(((t as PromiseRejectedResult).reason as Error).message).toMatch(/^could not (hand the results in to|copy the outputs' content to) origin: /);
    }
    renameSync(`${origin.dir}-away`, origin.dir);
    expect(await origin.git('for-each-ref', 'refs/minipach/runs')).toBe('');
  });
});
