import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { datum, failures, TestDataset, type ScheduleJson } from '../helpers/dataset.js';

const STEP = `input:
  pfs: { repo: raw, glob: "/*" }
transform:
  cmd: [sh, -c]
  stdin:
    - 'if grep -q fail "$MINIPACH_IN_raw"; then echo "cannot process $MINIPACH_DATUM" >&2; exit 3; fi; cp "$MINIPACH_IN_raw" "$MINIPACH_OUT/copy"'
`;
const DOWN = `input:
  pfs: { repo: step, glob: "/*" }
transform:
  cmd: [sh, -c]
  stdin: ['wc -c < "$MINIPACH_IN_step/copy" > "$MINIPACH_OUT/n"']
`;

describe('failures leave the dataset consistent', () => {
  let ds: TestDataset;
  afterEach(() => ds?.cleanup());

  it('a failing datum: exit 1, nothing committed for it, downstream blocked, the rest committed', async () => {
    ds = await TestDataset.create();
    ds.write({ 'raw/a': 'ok a\n', 'raw/b': 'please fail\n', 'raw/c': 'ok c\n', 'step/spec.yml': STEP, 'down/spec.yml': DOWN });
    await ds.save();
    const first = await ds.scheduleJson();
    expect(first.exitCode).toBe(1);
    const b = datum(first.report, 'step', 'b');
    expect(b).toMatchObject({ action: 'compute', status: 'failed', exit: 3 });
    expect(b.stderrTail).toContain('cannot process b');
    expect(datum(first.report, 'step', 'a').status).toBe('ok');
    expect(datum(first.report, 'down', 'a').status).toBe('ok');
    expect(datum(first.report, 'down', 'c').status).toBe('ok');
    const files = Object.keys(await ds.keysUnder('.'));
    expect(files.filter((f) => f.startsWith('step/b'))).toEqual([]);
    expect(files).toContain('step/a/copy');
    expect(files).toContain('down/c/n');
    expect((await ds.git('log', '--format=%s')).split('\n').filter((s) => s.includes('step/b'))).toEqual([]);
    expect((await ds.git('status', '--porcelain')).trim()).toBe('');
    await ds.fsck();

    // Human-readable output shows the exit code and stderr; the failure is remembered for later commands.
    const text = await ds.minipach('schedule');
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toMatch(/FAILED compute\s+step\/b .*exit 3/);
    expect(text.stdout).toContain('| cannot process b');
    const plan = JSON.parse((await ds.minipach('plan', '--json')).stdout);
    expect(plan.pipelines.find((p: { name: string }) => p.name === 'step').datums.find((d: { name: string }) => d.name === 'b').reason).toMatch(/^retry: failed 2 times before \(exit 3\)/);

    // Fixing the input lets the datum and what depends on it through.
    ds.write({ 'raw/b': 'fine now\n' });
    await ds.save();
    const fixed = await ds.scheduleJson();
    expect(fixed.exitCode).toBe(0);
    expect(datum(fixed.report, 'down', 'b').action).toBe('compute');
    await ds.fsck();
  });

  it('a downstream datum waits for a failed upstream datum it reads, and says so', async () => {
    ds = await TestDataset.create();
    ds.write({ 'raw/a': 'ok\n', 'step/spec.yml': STEP, 'down/spec.yml': DOWN });
    await ds.save();
    expect((await ds.scheduleJson()).exitCode).toBe(0);
    ds.write({ 'raw/a': 'now fail\n' });
    await ds.save();
    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(1);
    expect(datum(report, 'step', 'a').status).toBe('failed');
    expect(datum(report, 'down', 'a')).toMatchObject({ action: 'blocked', reason: 'upstream step/a failed (exit 3)' });
  });

  it('an invalid spec: exit 2 with file, line and field; the valid pipelines still run', async () => {
    ds = await TestDataset.create();
    ds.write({ 'raw/a': 'ok\n', 'step/spec.yml': STEP, 'bad/spec.yml': 'input:\n  pfs:\n    repo: raw\n    glob: "*"\ntransform: { cmd: [sh] }\n' });
    await ds.save();
    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(2);
    expect(report.errors).toEqual(['bad/spec.yml:4 input.pfs.glob: "*" must start with "/" (did you mean "/*"?)']);
    expect(datum(report, 'step', 'a').status).toBe('ok');
    const text = await ds.minipach('plan');
    expect(text.exitCode).toBe(2);
    expect(text.stdout).toContain('bad (invalid)');
    expect(text.stdout).toContain('error: bad/spec.yml:4 input.pfs.glob');
  });

  it('an output symlink leaving the dataset is refused, and nothing of it is committed', async () => {
    ds = await TestDataset.create();
    ds.write({ 'raw/a': 'x\n', 'evil/spec.yml': 'input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: [\'ln -s ../../../../etc/passwd "$MINIPACH_OUT/pw"\']\n' });
    await ds.save();
    const head = await ds.head();
    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(1);
    expect(datum(report, 'evil', 'a')).toMatchObject({ status: 'failed' });
    expect(datum(report, 'evil', 'a').reason).toMatch(/output of evil\/a: path "evil\/a\/pw -> ..\/..\/..\/..\/etc\/passwd" escapes the dataset/);
    expect(await ds.head()).toBe(head);
    await ds.fsck();
  });

  it('an output that is an annex link to content nobody has fails its datum; nothing of it is committed', async () => {
    ds = await TestDataset.create();
    const key = 'MD5E-s4--0123456789abcdef0123456789abcdef.txt';
    const hashdir = (await ds.git('annex', 'examinekey', '--format=${hashdirmixed}', key)).trim();
    ds.write({
      'raw/a': 'x\n',
      'raw/b': 'y\n',
      'fake/spec.yml': `input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: ['if [ "$MINIPACH_DATUM" = a ]; then ln -s ../../.git/annex/objects/${hashdir}${key}/${key} "$MINIPACH_OUT/result.txt"; else cp "$MINIPACH_IN_raw" "$MINIPACH_OUT/result.txt"; fi']\n`,
    });
    await ds.save();
    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(1);
    expect(datum(report, 'fake', 'a')).toMatchObject({ status: 'failed' });
    expect(datum(report, 'fake', 'a').reason).toMatch(/output fake\/a\/result.txt of fake\/a is an annexed file whose content \(MD5E-s4--0123456789abcdef0123456789abcdef.txt\) is not there/);
    expect(datum(report, 'fake', 'b').status).toBe('ok');
    expect(Object.keys(await ds.keysUnder('fake'))).not.toContain('fake/a/result.txt');
    const logs = await ds.minipach('logs', 'fake/a');
    expect(logs.stdout).toContain('is an annexed file whose content');
    await ds.fsck();
  });

  it('a command that writes to its input, as root: the write fails, the datum fails naming it, the object store stays intact', async () => {
    ds = await TestDataset.create();
    ds.write({
      'raw/a': 'precious a\n',
      'raw/b': 'precious b\n',
      'code/tool.sh': 'echo tool\n',
      'vandal/spec.yml': `input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  code: [code/tool.sh]\n  stdin: ['if [ "$MINIPACH_DATUM" = a ]; then echo x >> "$MINIPACH_IN_raw"; else cp "$MINIPACH_IN_raw" "$MINIPACH_OUT/copy"; fi']\n`,
      'vandal2/spec.yml': `input: { pfs: { repo: raw, glob: "/a" } }\ntransform:\n  cmd: [sh, -c]\n  code: [code/tool.sh]\n  stdin: ['echo done > "$MINIPACH_OUT/o"; echo y >> code/tool.sh']\n`,
    });
    await ds.save();
    const { exitCode, report } = await ds.scheduleJson();
    expect(exitCode).toBe(1);
    const a = datum(report, 'vandal', 'a');
    expect(a.status).toBe('failed');
    expect(a.reason).toMatch(/^exit \d+: the command tried to write to a read-only input \(.*raw\/a.*Read-only file system/);
    expect(datum(report, 'vandal', 'b').status).toBe('ok');
    expect(datum(report, 'vandal2', 'a')).toMatchObject({ status: 'failed' });
    expect(datum(report, 'vandal2', 'a').reason).toMatch(/read-only input \(.*code\/tool.sh/);
    expect(readFileSync(path.join(ds.dir, 'raw/a'), 'utf8')).toBe('precious a\n');
    expect(readFileSync(path.join(ds.dir, 'code/tool.sh'), 'utf8')).toBe('echo tool\n');
    await ds.fsck();
    // Checksums, not just presence: the content is what it was.
    await ds.git('annex', 'fsck', '--quiet', 'raw', 'code');
  });

  it('where inputs cannot be made read-only, a write to one is caught after the run and fails the datum loudly', async () => {
    ds = await TestDataset.create();
    ds.write({ 'raw/a': 'precious a\n', 'vandal/spec.yml': `input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: ['echo x >> "$MINIPACH_IN_raw"; echo ok > "$MINIPACH_OUT/o"']\n` });
    await ds.save();
    const head = await ds.head();
    const r = await ds.minipachWith({ MINIPACH_READ_ONLY_INPUTS: 'off' }, 'schedule', '--json');
    expect(r.exitCode).toBe(1);
    const report = JSON.parse(r.stdout) as ScheduleJson;
    expect(datum(report, 'vandal', 'a').reason).toMatch(/^the command wrote to its input raw\/a: its content changed; the datum failed \(check the object store with: git annex fsck raw\/a\)/);
    expect(await ds.head()).toBe(head);
    // The damage is real (no sandbox stopped it), and git-annex's checksums confirm what minipach said.
    const fsck = await ds.git('annex', 'fsck', 'raw/a').then(() => 'clean', (e: Error) => e.message);
    expect(fsck).toMatch(/raw\/a/);
  });

  it('uncommitted work in the checked-out tree is never overwritten', async () => {
    ds = await TestDataset.create({ text2git: true });
    ds.write({ 'raw/a': 'x\n', 'step/spec.yml': STEP, 'notes.txt': 'draft\n' });
    await ds.save();
    writeFileSync(path.join(ds.dir, 'notes.txt'), 'my unsaved edit\n');
    const { exitCode } = await ds.scheduleJson();
    expect(exitCode).toBe(0);
    expect(readFileSync(path.join(ds.dir, 'notes.txt'), 'utf8')).toBe('my unsaved edit\n');
    expect(readFileSync(path.join(ds.dir, 'step/a/copy'), 'utf8')).toBe('x\n');
    expect((await ds.git('status', '--porcelain')).trim()).toBe('M notes.txt');
  });

  it('concurrent jobs do not trip over each other\'s scratch checkouts', async () => {
    ds = await TestDataset.create();
    const files: Record<string, string> = { 'step/spec.yml': STEP };
    for (let i = 0; i < 16; i++) files[`raw/f${i}`] = `datum ${i}\n`;
    ds.write(files);
    await ds.save();
    const { exitCode, report } = await ds.scheduleJson('-j', '4');
    expect(exitCode, failures(report)).toBe(0);
    expect(report.counts.computed).toBe(16);
    expect((await ds.git('worktree', 'list')).trim().split('\n')).toHaveLength(1);
    await ds.fsck();
  });

  it('a path that is not a dataset, and bad options, are usage errors (exit 2)', async () => {
    ds = await TestDataset.create();
    const notDs = path.dirname(ds.dir);
    const r = await ds.minipach('plan', notDs);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/is not a git repository/);
    expect((await ds.minipach('schedule', '-j', '0')).exitCode).toBe(2);
    const version = await ds.minipach('--version');
    expect(version).toMatchObject({ exitCode: 0, stdout: (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version });
  });
});
