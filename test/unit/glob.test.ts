import { describe, expect, it } from 'vitest';
import { compileGlob, expandCaptureTemplate, GlobSyntaxError, matchGlob } from '../../daemon/core/glob.js';

const files = ['a.txt', 'sub-01/anat/T1.nii', 'sub-01/func/bold.nii', 'sub-02/anat/T1.nii', 'notes/readme.md'].map((rel) => ({ rel }));
const match = (g: string) => matchGlob(compileGlob(g), files).map((m) => [m.match.path, m.files.map((f) => f.rel)]);

describe('Pachyderm glob semantics', () => {
  it('"/" is the whole repo as one datum', () => {
    expect(match('/')).toEqual([['', files.map((f) => f.rel)]]);
    expect(matchGlob(compileGlob('/'), [])).toEqual([]);
  });
  it('"/*" is each top-level entry; a directory brings its whole subtree', () => {
    expect(match('/*')).toEqual([
      ['a.txt', ['a.txt']],
      ['notes', ['notes/readme.md']],
      ['sub-01', ['sub-01/anat/T1.nii', 'sub-01/func/bold.nii']],
      ['sub-02', ['sub-02/anat/T1.nii']],
    ]);
  });
  it('"/*/*" is each entry two levels down', () => {
    expect(match('/*/*').map((m) => m[0])).toEqual(['notes/readme.md', 'sub-01/anat', 'sub-01/func', 'sub-02/anat']);
  });
  it('"/**" is every file at any depth', () => {
    expect(match('/**').map((m) => m[0])).toEqual(files.map((f) => f.rel).sort());
    expect(match('/**/*.nii').map((m) => m[0])).toEqual(['sub-01/anat/T1.nii', 'sub-01/func/bold.nii', 'sub-02/anat/T1.nii']);
  });
  it('patterns select by name, and capture groups are returned', () => {
    expect(match('/sub-*').map((m) => m[0])).toEqual(['sub-01', 'sub-02']);
    const m = matchGlob(compileGlob('/(sub-*)/(*)'), files);
    expect(m.map((x) => x.match.captures)).toEqual([['sub-01', 'anat'], ['sub-01', 'func'], ['sub-02', 'anat']]);
    expect(match('/sub-0[2-9]').map((m) => m[0])).toEqual(['sub-02']);
    expect(match('/{a.txt,notes}').map((m) => m[0])).toEqual(['a.txt', 'notes']);
  });
  it('a glob matching nothing gives no datums', () => {
    expect(match('/ses-*')).toEqual([]);
  });
  it('malformed globs are errors with a hint', () => {
    expect(() => compileGlob('sub-*')).toThrow(/must start with "\/"/);
    try {
      compileGlob('sub-*');
    } catch (e) {
      expect((e as GlobSyntaxError).hint).toBe('did you mean "/sub-*"?');
    }
    expect(() => compileGlob('/(sub-*')).toThrow(/unclosed "\("/);
    expect(() => compileGlob('/sub-[0-9')).toThrow(/unclosed "\["/);
    expect(() => compileGlob('/a/../b')).toThrow(GlobSyntaxError);
  });
  it('capture references beyond the groups are errors', () => {
    expect(expandCaptureTemplate('$1-$2', 2, ['a', 'b'])).toBe('a-b');
    expect(() => expandCaptureTemplate('$3', 2)).toThrow(/refers to \$3 but the glob has 2 capture groups/);
  });
});
