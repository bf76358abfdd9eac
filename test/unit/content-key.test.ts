import { describe, expect, it } from 'vitest';
import { annexKeyFromLinkTarget, annexKeyFromPointer, annexKeyInBlob, comparableAnnexKey, retargetAnnexLink } from '../../daemon/core/content-key.js';
import { parseCatFileBatch, parseLsTree } from '../../daemon/adapters/git.js';

const K = 'MD5E-s6--b1946ac92492d2347c6235b4d2611184.txt';

describe('content keys from git objects', () => {
  it('reads the key from an annex symlink target and a pointer file', () => {
    expect(annexKeyFromLinkTarget(`../../.git/annex/objects/F4/53/${K}/${K}`)).toBe(K);
    expect(annexKeyFromLinkTarget('../other/file.txt')).toBeUndefined();
    expect(annexKeyFromPointer(`/annex/objects/${K}\n`)).toBe(K);
    expect(annexKeyFromPointer('plain text\n')).toBeUndefined();
  });
  it("does not take an unlocked file's pointer, newline and all, for a link target", () => {
    expect(annexKeyFromLinkTarget(`/annex/objects/${K}\n`)).toBeUndefined();
    expect(annexKeyFromLinkTarget('/annex/objects/SHA256-s6--abc\n')).toBeUndefined();
  });
  it('reads the key from a blob\'s bytes as from its text, inside a larger buffer too', () => {
    const cases = [`../../.git/annex/objects/F4/53/${K}/${K}`, `/annex/objects/${K}\n`, '/annex/objects/SHA256-s6--abc\n', '../other/file.txt', 'plain text\n', '', `../../.git/annex/objects/x/é-${K}`, `/annex/objects/a/b/${K}/${K}`];
    for (const text of cases) {
      const expected = annexKeyFromPointer(text) ?? annexKeyFromLinkTarget(text);
      expect(annexKeyInBlob(Buffer.from(text))).toBe(expected);
      // Another blob's link target before it in the same buffer must not be taken for this one's.
      const before = `../.git/annex/objects/F4/53/${K}/${K}\n`;
      const buf = Buffer.from(before + text + '\nafter/annex/objects/x');
      expect(annexKeyInBlob(buf, Buffer.byteLength(before), Buffer.byteLength(before + text))).toBe(expected);
    }
    expect(annexKeyInBlob(Buffer.from('/annex/objects/SHA256-s6--abc\n'))).toBe('SHA256-s6--abc');
  });
  it('compares *E keys without their extension, other backends as they are', () => {
    expect(comparableAnnexKey(K)).toBe('MD5E-s6--b1946ac92492d2347c6235b4d2611184');
    expect(comparableAnnexKey('MD5E-s6--b1946ac92492d2347c6235b4d2611184.nii.gz')).toBe('MD5E-s6--b1946ac92492d2347c6235b4d2611184');
    expect(comparableAnnexKey('SHA256-s6--abc')).toBe('SHA256-s6--abc');
  });
  it('re-points an annex link for a path of another depth', () => {
    expect(retargetAnnexLink(`../../.git/annex/objects/F4/53/${K}/${K}`, 'p/x/y/f')).toBe(`../../../.git/annex/objects/F4/53/${K}/${K}`);
  });
  it('parses ls-tree -z -l and cat-file --batch output', () => {
    const ls = parseLsTree('120000 blob abc     122\traw/a b.txt\0' + '160000 commit def       -\tsubds\0');
    expect(ls).toEqual([
      { mode: '120000', type: 'blob', oid: 'abc', size: 122, path: 'raw/a b.txt' },
      { mode: '160000', type: 'commit', oid: 'def', size: undefined, path: 'subds' },
    ]);
    expect(parseLsTree('100644 blob ' + 'a'.repeat(40) + '\tx\ty\x00040000 tree ' + 'b'.repeat(40) + '\td\0')).toEqual([
      { mode: '100644', type: 'blob', oid: 'a'.repeat(40), size: undefined, path: 'x\ty' },
      { mode: '040000', type: 'tree', oid: 'b'.repeat(40), size: undefined, path: 'd' },
    ]);
    const batch = parseCatFileBatch(Buffer.from('aaa blob 3\nxyz\nbbb missing\nccc blob 0\n\n'));
    expect([...batch.entries()].map(([k, v]) => [k, v.toString()])).toEqual([['aaa', 'xyz'], ['ccc', '']]);
  });
});

describe('annex keys', () => {
  it('are recognised as the pattern says', async () => {
    const { isAnnexKey } = await import('../../daemon/core/content-key.js');
    const pattern = /^[A-Z0-9]+E?-[^/\n]*--[^/\n]+$/;
    const cases = [K, 'SHA256-s6--abc', 'SHA256E-s6--abc.nii.gz', 'WORM-s3-m1--a b', 'WORM--x', 'WORM---x', 'MD5E-s6--', 'md5e-s6--abc', '-s6--abc', 'MD5E', 'MD5E-', 'MD5E-s6-abc', 'MD5E-s6--a/b', 'MD5E-s6--abc\n', 'MD5E-s/6--abc', 'M-D5-s--x', 'URL--http:', 'A---', 'A----', 'A-b--c--d', 'É-s--x', ''];
    for (const c of cases) expect(isAnnexKey(c), c).toBe(pattern.test(c));
  });
});
