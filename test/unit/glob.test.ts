import { describe, expect, it } from 'vitest';
import { compileGlob, expandCaptureTemplate, GlobSyntaxError, matchGlob } from '../../daemon/core/glob.js';

const files = ['a.txt', 'sub-01/anat/T1.nii', 'sub-01/func/bold.nii', 'sub-02/anat/T1.nii', 'notes/readme.md'].map((rel) => ({ rel }));
const match = (g: string) => matchGlob(compileGlob(g), files, (f) => f.rel).map((m) => [m.match.path, m.files.map((f) => f.rel)]);

describe('Pachyderm glob semantics', () => {
  it('"/" is the whole repo as one datum', () => {
    expect(match('/')).toEqual([['', files.map((f) => f.rel)]]);
    expect(matchGlob(compileGlob('/'), [] as { rel: string }[], (f) => f.rel)).toEqual([]);
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
    const m = matchGlob(compileGlob('/(sub-*)/(*)'), files, (f) => f.rel);
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

describe("Pachyderm's extended globs (cases from its glob package, ohmyglob)", () => {
  const cases: [boolean, string, string][] = [
    [true, '*.(a|b)', 'a.a.a'],
    [false, '*.(a|b)', 'a.bb'],
    [true, '*.(a|b)*', 'd.a.d'],
    [true, '?(a*|b)', 'ax'],
    [true, '?@(a|b)*@(c)d', 'abcd'],
    [true, '(a|d).(a|b)*', 'a.bb'],
    [false, '(b)', 'a'],
    [false, '@(a)b', 'aa'],
    [true, '@(ab|a*(b))*(c)d', 'abbcd'],
    [true, '@(b+(c)d|e*(f)g?|?(h)i@(j|k))', 'effgz'],
    [false, '@(b+(c)d|e+(f)g?|?(h)i@(j|k))', 'egz'],
    [true, '@(foo|f|fo)*(f|of+(o))', 'foofoofo'],
    [true, '*.c?(c)', 'file.cc'],
    [false, '*.c?(c)', 'file.ccc'],
    [true, '*(@(a))a@(c)', 'aaac'],
    [false, '*(@(a))a@(c)', 'baaac'],
    [true, '*(f*(o))', 'fooofoofofooo'],
    [false, '*(f*(o))', 'xfoooofof'],
    [true, '*(0|1|3|5|7|9)', '137577991'],
    [false, '*(0|1|3|5|7|9)', '2468'],
    [true, '+([0-7])', '0377'],
    [false, '+([0-7])', '09'],
    [true, 'para@(chute|graph)', 'paragraph'],
    [false, 'para@(chute|graph)', 'paramour'],
    [true, 'para*([0-9])', 'para'],
    [false, 'para+([0-9])', 'para'],
    [true, 'ab**(e|f)', 'ab'],
    [true, 'ab**(e|f)g', 'abcfefg'],
    [false, 'ab**(e|f)g', 'abef'],
    [true, 'a\\(*b', 'a((b'],
    [false, 'a\\(*b', 'ab'],
    // Negations, with "/" as the separator: they never cross a segment.
    [false, '!(*.js|*.json)', 'a.js'],
    [true, '!(*.js|*.json)', 'a.js.gz'],
    [true, 'a*!(x)', 'ax'],
    [false, 'a!(x)', 'ax'],
    [true, 'a!(x)', 'ab'],
    [true, '!(x)', 'foo'],
    [false, '!(foo)', 'foo'],
    [true, '!(!(foo))', 'foo'],
    [false, '!(!(!(foo)))', 'foo'],
    [false, '!(foo)*', 'foobar'],
    [true, '!(foo)', 'foobar'],
    [false, '!(*.*).!(*.*)', 'moo.cow'],
    [true, '*(!(f))', 'fff'],
    [false, '+(!(f))', 'f'],
    [true, '@(!(z*)|*x)', 'zoox'],
    [false, '@(!(z*)|*x)', 'zoot'],
    [true, '*.!(js|css)', 'bar.min.js'],
    [false, '*.!(js)', 'a-integration-test.js'],
    [true, '*-!(integration-)test.js', 'a-integration-test.js'],
    [false, '*-!(integration)-test.js', 'a-integration-test.js'],
    [true, '!(*.a|*.b|*.c)', 'a.abcd'],
    [false, '!(*.a|*.b|*.c)*', 'a.abcd'],
  ];
  for (const [want, pattern, name] of cases) {
    it(`${pattern} ${want ? 'matches' : 'does not match'} ${name}`, () => {
      expect(compileGlob(`/${pattern}`).regex.test(name)).toBe(want);
    });
  }

  it('a negation never matches across "/"; "/!(**)" matches nothing, not names starting with "!"', () => {
    expect(compileGlob('/!(x)').regex.test('foo/bar')).toBe(false);
    const tree = ['!bang', 'a', 'b/c'].map((rel) => ({ rel }));
    expect(matchGlob(compileGlob('/!(**)'), tree, (f) => f.rel)).toEqual([]);
    expect(matchGlob(compileGlob('/!(a)'), tree, (f) => f.rel).map((m) => m.match.path)).toEqual(['!bang', 'b']);
  });

  it('every group captures, in order of its "(", extended or not', () => {
    const g = compileGlob('/@(sub|ses)-(*)/+([0-9]).nii');
    expect(g.groupCount).toBe(3);
    const m = matchGlob(g, [{ rel: 'sub-01/42.nii' }, { rel: 'ses-x/7.nii' }, { rel: 'run-1/1.nii' }], (f) => f.rel);
    expect(m.map((x) => [x.match.path, x.match.captures])).toEqual([
      ['ses-x/7.nii', ['ses', 'x', '7']],
      ['sub-01/42.nii', ['sub', '01', '42']],
    ]);
    expect(() => compileGlob('/@(a|b')).toThrow(/unclosed "\("/);
  });
  it('gathers the files of one match wherever they come in the list, and gives matches in path order', () => {
    const unsorted = [{ rel: 'b/x' }, { rel: 'a/y' }, { rel: 'c' }, { rel: 'b/z' }, { rel: 'a/w' }];
    expect(matchGlob(compileGlob('/*'), unsorted, (f) => f.rel).map((m) => [m.match.path, m.files.map((f) => f.rel)])).toEqual([
      ['a', ['a/y', 'a/w']],
      ['b', ['b/x', 'b/z']],
      ['c', ['c']],
    ]);
    const captured = matchGlob(compileGlob('/(*)'), unsorted, (f) => f.rel);
    expect(captured.map((m) => [m.match.path, m.match.captures])).toEqual([['a', ['a']], ['b', ['b']], ['c', ['c']]]);
  });
});
