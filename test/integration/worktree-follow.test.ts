/**
 * A checked-out working tree follows the branch after each integration. Unless the new commits write an
 * unlocked annexed file (a pointer file, which only git-annex's smudge filter turns into its content), it
 * follows without git-annex's filter: with it, every file written in the same second as the index went
 * through git-annex again at the next update (git's racy-clean check), most of an integration's time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../daemon/adapters/dataset.js';
import { gitBlobOid } from '../../daemon/core/hash.js';
import { Committer, type ComputedResult } from '../../daemon/results/committer.js';
import { planAtHead } from '../../daemon/schedule/plan-at-head.js';
import { failures, TestDataset, type ScheduleJson } from '../helpers/dataset.js';

const COUNT = `input: {pfs: {repo: raw, glob: "/*"}}
transform: {cmd: [sh, -c], stdin: ['wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n"']}
`;
const NO_FILTER = '-c filter.annex.process= -c filter.annex.smudge= -c filter.annex.clean= read-tree -m -u';

/** The `read-tree -m -u` command lines git traced (GIT_TRACE2_EVENT: each command's argv as given). */
const readTrees = (trace: string) =>
  readFileSync(trace, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; argv?: string[] })
    .filter((e) => e.event === 'start' && e.argv?.includes('read-tree') && e.argv.includes('-u'))
    .map((e) => e.argv!.slice(1).join(' '));

async function dataset(unlocked: boolean): Promise<TestDataset> {
  const ds = await TestDataset.create();
  if (unlocked) await ds.git('config', 'annex.addunlocked', 'true');
  ds.write({ 'raw/a/data.txt': 'one\n', 'raw/b/data.txt': 'three\n', 'count/spec.yml': COUNT });
  await ds.save('data and pipeline');
  return ds;
}

describe('the working tree following the branch', () => {
  const made: TestDataset[] = [];
  afterAll(() => made.forEach((d) => d.cleanup()));

  it("follows without git-annex's filter when the results are annexed links and markers, and ends clean", async () => {
    const ds = await dataset(false);
    made.push(ds);
    const trace = path.join(path.dirname(ds.dir), 'trace');
    const r = await ds.minipachWith({ GIT_TRACE2_EVENT: trace }, 'schedule', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readTrees(trace).length).toBeGreaterThan(0);
    for (const line of readTrees(trace)) expect(line).toContain(NO_FILTER);
    expect(await ds.git('ls-tree', 'HEAD', 'count/a/n')).toMatch(/^120000 /);
    expect(readFileSync(path.join(ds.dir, 'count/a/n'), 'utf8').trim()).toBe('4');
    expect(readFileSync(path.join(ds.dir, 'count/b/n'), 'utf8').trim()).toBe('6');
    expect(await ds.git('status', '--porcelain')).toBe('');
    await ds.fsck();
  });

  it('keeps the filter when a result is an unlocked annexed file (the native executor hands its pointer in)', async () => {
    const ds = await dataset(true);
    made.push(ds);
    const trace = path.join(path.dirname(ds.dir), 'trace');
    const r = await ds.minipachWith({ GIT_TRACE2_EVENT: trace }, 'schedule', '--json');
    const report = JSON.parse(r.stdout) as ScheduleJson;
    expect(report.counts.computed, failures(report)).toBe(2);
    expect(await ds.git('cat-file', '-p', 'HEAD:count/a/n')).toMatch(/^\/annex\/objects\/MD5E-s2--/);
    expect(readTrees(trace).length).toBeGreaterThan(0);
    for (const line of readTrees(trace)) expect(line).not.toContain('filter.annex.process=');
  });

  it('asks git for results that come as blob ids (a worker\'s run commit): a pointer among them keeps the filter', async () => {
    const ds = await dataset(false);
    made.push(ds);
    const trace = path.join(path.dirname(ds.dir), 'trace');
    process.env['GIT_TRACE2_EVENT'] = trace;
    try {
      const repo = await openDataset(ds.dir);
      const { plan, head } = await planAtHead(repo);
      const pipeline = plan.pipelines[0]!;
      // Blobs already in the repository, as a worker's run commit brings them: a plain file and a pointer.
      const blob = async (text: string) => (await execa('git', ['hash-object', '-w', '--stdin'], { cwd: ds.dir, input: text })).stdout.trim();
      const pointer = '/annex/objects/MD5E-s2--48a24b70a0b376535542b996af517398\n';
      const result = (name: string, text: string, oid: string): ComputedResult => {
        const d = pipeline.datums.find((x) => x.name === name)!;
        expect(oid).toBe(gitBlobOid(text));
        return {
          plan: d,
          transform: pipeline.transform!,
          commit: head,
          outputs: [{ mode: '100644', type: 'blob', oid, size: Buffer.byteLength(text), path: `${d.outputDir}/n` }],
          record: { cmd: 'true', chain: [], exit: 0, extra_inputs: [], inputs: [d.datum!.inputs[0]!.path], outputs: [d.outputDir], pwd: '.' },
          resources: { wall: 0 },
        };
      };
      const committer = new Committer(repo);
      const first = await committer.integrate(head, [result('a', '4\n', await blob('4\n'))], [], []);
      expect(readTrees(trace).at(-1)).toContain(NO_FILTER);
      await committer.integrate(first.head, [result('b', pointer, await blob(pointer))], [], []);
      expect(readTrees(trace)).toHaveLength(2);
      expect(readTrees(trace).at(-1)).not.toContain('filter.annex.process=');
    } finally {
      delete process.env['GIT_TRACE2_EVENT'];
    }
  });
});
