import { describe, expect, it } from 'vitest';
import { annexKeyFromLinkTarget, annexKeyFromPointer, comparableAnnexKey, retargetAnnexLink } from '../../daemon/core/content-key.js';
import { parseCatFileBatch, parseLsTree } from '../../daemon/adapters/git.js';

const K = 'MD5E-s6--b1946ac92492d2347c6235b4d2611184.txt';

describe('content keys from git objects', () => {
  it('reads the key from an annex symlink target and a pointer file', () => {
    expect(annexKeyFromLinkTarget(`../../.git/annex/objects/F4/53/${K}/${K}`)).toBe(K);
    expect(annexKeyFromLinkTarget('../other/file.txt')).toBeUndefined();
    expect(annexKeyFromPointer(`/annex/objects/${K}\n`)).toBe(K);
    expect(annexKeyFromPointer('plain text\n')).toBeUndefined();
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
    const batch = parseCatFileBatch(Buffer.from('aaa blob 3\nxyz\nbbb missing\nccc blob 0\n\n'));
    expect([...batch.entries()].map(([k, v]) => [k, v.toString()])).toEqual([['aaa', 'xyz'], ['ccc', '']]);
  });
});
