/**
 * An unlocked annexed file (a pointer file kept in git, `/annex/objects/KEY\n`) is the same content as a locked
 * one (a symlink to KEY): same content key, same datum key, so one result serves both. Until stop 25 the
 * pointer's trailing newline stayed in its key, which for backends without an extension (SHA256, WORM...)
 * made the datum keys differ and gave git-annex a key that does not exist.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDataset } from '../helpers/dataset.js';

const COUNT = 'input: {pfs: {repo: raw, glob: "/*"}}\ntransform: {cmd: [sh, -c], stdin: [\'wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n"\']}\n';

describe('unlocked annexed files', () => {
  let ds: TestDataset;
  beforeAll(async () => {
    ds = await TestDataset.create();
    ds.write({ '.gitattributes': '* annex.backend=SHA256\n**/.git* annex.largefiles=nothing\n', 'count/spec.yml': COUNT });
    await ds.save('SHA256 keys (no extension)');
    ds.write({ 'raw/locked/data.txt': 'the same bytes\n', 'raw/unlocked/data.txt': 'the same bytes\n' });
    await ds.save('two subjects with the same content');
    // `datalad save` would lock it again (git annex add); git's own add keeps it unlocked (annex's clean filter).
    await ds.git('annex', 'unlock', 'raw/unlocked/data.txt');
    await ds.git('add', 'raw/unlocked/data.txt');
    await ds.git('commit', '-q', '-m', 'one of them unlocked');
  });
  afterAll(() => ds?.cleanup());

  it('plans an unlocked file as the same content as the locked one', async () => {
    // The unlocked file is a pointer file in git now, the locked one a symlink: both name one SHA256 key.
    expect(await ds.git('ls-tree', 'HEAD', 'raw/unlocked/data.txt')).toMatch(/^100644 blob /);
    expect(await ds.git('ls-tree', 'HEAD', 'raw/locked/data.txt')).toMatch(/^120000 blob /);
    const pointer = await ds.git('cat-file', '-p', 'HEAD:raw/unlocked/data.txt');
    const key = pointer.trim().replace('/annex/objects/', '');
    expect(key).toMatch(/^SHA256-s15--[0-9a-f]{64}$/);
    const plan = (await ds.planJson()) as { pipelines: { datums: { name: string; key: string; action: string; reason: string }[] }[] };
    const [locked, unlocked] = plan.pipelines[0]!.datums;
    expect([locked!.name, unlocked!.name]).toEqual(['locked', 'unlocked']);
    expect(unlocked!.key).toBe(locked!.key);
    expect([locked!.action, unlocked!.action]).toEqual(['compute', 'link']);
    // And `datums` shows the key git-annex knows, without the newline.
    const datums = await ds.minipach('datums', '--json', 'count');
    expect(datums.exitCode, datums.stderr).toBe(0);
    expect(datums.stdout).toContain(`"${key}"`);
    expect(datums.stdout).not.toContain('\\n"');
  });
});
