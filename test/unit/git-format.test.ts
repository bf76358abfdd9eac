import { describe, expect, it } from 'vitest';
import { fastImportPath, fastImportStream, parseCatFileBatch, parseLsTree } from '../../daemon/adapters/git-format.js';

describe('git formats', () => {
  it('parses ls-tree -r -z -l and cat-file --batch output', () => {
    const ls = '100644 blob ' + 'a'.repeat(40) + '      12\tdir/a b.txt\u0000160000 commit ' + 'b'.repeat(40) + '       -\tsub\0';
    expect(parseLsTree(ls)).toEqual([
      { mode: '100644', type: 'blob', oid: 'a'.repeat(40), size: 12, path: 'dir/a b.txt' },
      { mode: '160000', type: 'commit', oid: 'b'.repeat(40), size: undefined, path: 'sub' },
    ]);
    const batch = Buffer.from(`${'c'.repeat(40)} blob 3\nabc\n${'d'.repeat(40)} missing\n`);
    expect([...parseCatFileBatch(batch)].map(([k, v]) => [k, v.toString()])).toEqual([['c'.repeat(40), 'abc']]);
  });

  it('quotes fast-import paths only where it must', () => {
    expect(fastImportPath('a b/c.txt')).toBe('a b/c.txt');
    expect(fastImportPath('"q.txt')).toBe('"\\"q.txt"');
    expect(fastImportPath('new\nline')).toBe('"new\\nline"');
  });

  it('writes a chain of commits: the first from the parent, blobs inline with byte lengths, deletions of whole directories', () => {
    const stream = fastImportStream('refs/x', 'p'.repeat(40), [
      { message: 'one\n', changes: [{ path: 'out/a', remove: true }, { path: 'out/a/f', mode: '100644', oid: 'f'.repeat(40) }, { path: 'm', mode: '100644', content: 'é\n' }] },
      { message: 'two\n', changes: [], otherParents: ['r'.repeat(40)] },
    ], { author: 'A <a@x> 1 +0000', committer: 'C <c@x> 1 +0000' }).toString('utf8');
    expect(stream).toBe(
      [
        'commit refs/x', 'mark :1', 'author A <a@x> 1 +0000', 'committer C <c@x> 1 +0000', 'data 4', 'one', '', `from ${'p'.repeat(40)}`,
        'D out/a', `M 100644 ${'f'.repeat(40)} out/a/f`, 'M 100644 inline m', 'data 3', 'é', '', '',
        'commit refs/x', 'mark :2', 'author A <a@x> 1 +0000', 'committer C <c@x> 1 +0000', 'data 4', 'two', '', `merge ${'r'.repeat(40)}`, '',
        'done', '',
      ].join('\n'),
    );
  });
});

describe('cat-file --batch decoded in order', () => {
  it('gives each object its decoding in the order asked, a missing one as undefined, as the Buffer parser reads them', async () => {
    const { parseCatFileBatch, parseCatFileInOrder } = await import('../../daemon/adapters/git-format.js');
    const a = '1'.repeat(40);
    const b = '2'.repeat(40);
    const target = '../.git/annex/objects/é';
    const out = Buffer.from(`${a} blob ${Buffer.byteLength(target)}\n${target}\n${'3'.repeat(40)} missing\n${b} blob 0\n\n${a} blob ${Buffer.byteLength(target)}\n${target}\n`);
    const texts = parseCatFileInOrder(out, (bytes, start, end) => bytes.toString('utf8', start, end));
    expect(texts).toEqual([target, undefined, '', target]);
    expect([...parseCatFileBatch(out).values()].map((v) => v.toString('utf8'))).toEqual([target, '']);
  });
});
