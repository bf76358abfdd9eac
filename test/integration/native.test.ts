/**
 * The native executor against real datalad: the same datums give the same trees and keys as `datalad run`,
 * and `datalad rerun` on a plain clone replays every run commit with identical keys, for a default dataset
 * (everything annexed) and a text2git one (text in git, binaries annexed).
 */
import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { datum, ENV, failures, TestDataset } from '../helpers/dataset.js';

// One text output (in git with text2git, or by the .gitattributes rule below) and one binary (annexed).
const SPEC = `input: { pfs: { repo: raw, glob: "/*" } }
transform:
  cmd: [sh, -c]
  stdin:
    - 'wc -c < "$MINIPACH_IN_raw/x.txt" > "$MINIPACH_OUT/count.txt"'
    - 'head -c 300 /dev/zero > "$MINIPACH_OUT/blob.bin"; cat "$MINIPACH_IN_raw/x.txt" >> "$MINIPACH_OUT/blob.bin"'
    - 'mkdir -p "$MINIPACH_OUT/deep" && echo "{deep}" > "$MINIPACH_OUT/deep/note.md" && chmod +x "$MINIPACH_OUT/deep/note.md"'
`;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function study(n: number, text2git: boolean): Promise<TestDataset> {
  const ds = await TestDataset.create({ text2git });
  cleanups.push(() => ds.cleanup());
  const files: Record<string, string> = { 'work/spec.yml': SPEC };
  for (let i = 0; i < n; i++) files[`raw/s${String(i).padStart(2, '0')}/x.txt`] = `subject ${i}${'!'.repeat(i % 7)}\n`;
  // In the default dataset everything is annexed; this rule puts the counts in git, as a dataset may.
  if (!text2git) files['.gitattributes'] = readFileSync(path.join(ds.dir, '.gitattributes'), 'utf8') + 'work/**/count.txt annex.largefiles=nothing\n';
  ds.write(files);
  await ds.save('study');
  return ds;
}

/** `path -> mode oid` of a directory at HEAD (annex links name their keys through the blob). */
async function tree(ds: TestDataset, dir: string, rev = 'HEAD'): Promise<string[]> {
  return (await ds.git('ls-tree', '-r', rev, '--', dir)).split('\n').filter((l) => l && !l.includes('/.minipach/') && !l.endsWith('/spec.yml'));
}

describe('the native executor', () => {
  for (const text2git of [false, true]) {
    it(`gives the same trees and keys as datalad run (${text2git ? 'text2git' : 'default'} dataset), annexed and git outputs alike`, async () => {
      const a = await study(4, text2git);
      const copy = `${path.dirname(a.dir)}-copy`;
      cpSync(path.dirname(a.dir), copy, { recursive: true });
      const b = new TestDataset(path.join(copy, 'ds'));
      cleanups.push(() => b.cleanup());
      const native = await a.scheduleJson('--executor', 'native', '--batch-size', '3');
      const viaDatalad = await b.scheduleJson('--executor', 'datalad');
      expect(native.exitCode, failures(native.report)).toBe(0);
      expect(viaDatalad.exitCode, failures(viaDatalad.report)).toBe(0);
      const t = await tree(a, 'work');
      console.log(t.join('\n'));
      expect(t).toEqual(await tree(b, 'work'));
      expect(t.filter((l) => l.startsWith('120000')).length).toBe(4 * (text2git ? 1 : 2));
      // Executable bits are kept for files in git.
      expect(t.some((l) => l.startsWith('100755') && l.endsWith('deep/note.md'))).toBe(text2git);
      // The same run records, but for dates and minipach's resource figures.
      const record = async (ds: TestDataset) => {
        const msg = await ds.git('log', '-1', '--format=%B', '--grep', 'minipach work/s01$');
        const json = JSON.parse(/=== Do not change lines below ===\n([\s\S]*)\n\^\^\^/.exec(msg)![1]!) as Record<string, unknown>;
        delete (json['minipach'] as Record<string, unknown>)['resources'];
        return json;
      };
      expect(await record(a)).toEqual(await record(b));
      await a.fsck();
    });
  }

  for (const text2git of [false, true]) {
    it(`datalad rerun on a plain clone replays every run commit of a 50-datum native run with identical keys (${text2git ? 'text2git' : 'default'})`, async () => {
      const ds = await study(50, text2git);
      const base = await ds.head();
      const r = await ds.scheduleJson('-j', '2', '--batch-size', '10');
      expect(r.exitCode, failures(r.report)).toBe(0);
      expect(r.report.counts.computed).toBe(50);
      const runs = (await ds.git('log', '--format=%H', `${base}..HEAD`, '--grep', '^\\[DATALAD RUNCMD\\]')).split('\n').filter(Boolean);
      expect(runs.length).toBe(50);
      const clone = path.join(path.dirname(ds.dir), 'clone');
      await execa('datalad', ['clone', ds.dir, clone], { env: ENV });
      // Every run commit since the base, replayed by datalad alone (no minipach) onto the base.
      await execa('datalad', ['rerun', '--branch', 'replay', '--onto', base, '--since', base], { cwd: clone, env: ENV });
      const replayed = await tree(new TestDataset(clone), 'work', 'replay');
      expect(replayed.length).toBeGreaterThanOrEqual(150);
      expect(replayed).toEqual(await tree(ds, 'work'));
      await ds.fsck();
    });
  }

  it('a batch with one failing datum: the others are committed, the failure is recorded alone', async () => {
    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    const files: Record<string, string> = {
      'p/spec.yml': `input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: ['if [ "$MINIPACH_DATUM" = s3 ]; then echo "s3 is bad" >&2; exit 4; fi; cp "$MINIPACH_IN_raw" "$MINIPACH_OUT/copy"']\n`,
    };
    for (let i = 0; i < 6; i++) files[`raw/s${i}`] = `s${i}\n`;
    ds.write(files);
    await ds.save();
    const { exitCode, report } = await ds.scheduleJson('--batch-size', '6');
    expect(exitCode).toBe(1);
    expect(datum(report, 'p', 's3')).toMatchObject({ status: 'failed', exit: 4, reason: 'exit 4' });
    expect(datum(report, 'p', 's3').stderrTail).toContain('s3 is bad');
    for (const s of ['s0', 's1', 's2', 's4', 's5']) expect(datum(report, 'p', s).status).toBe('ok');
    expect(report.counts).toMatchObject({ computed: 5, failed: 1 });
    const files2 = Object.keys(await ds.keysUnder('p'));
    expect(files2.filter((f) => f.endsWith('/copy')).sort()).toEqual(['p/s0/copy', 'p/s1/copy', 'p/s2/copy', 'p/s4/copy', 'p/s5/copy']);
    expect((await ds.minipach('logs', 'p/s3')).stdout).toContain('s3 is bad');
    await ds.fsck();
  });
});
