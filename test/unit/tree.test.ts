import { describe, expect, it } from 'vitest';
import { coveringDirs, isAtOrBelow, makeSnapshot, entriesUnder, OverlapIndex } from '../../daemon/core/tree.js';

describe('coveringDirs (the read-only mounts of a batch)', () => {
  it("covers a batch's inputs with their highest directory that holds no output", () => {
    const inputs = Array.from({ length: 50 }, (_, i) => `raw/s${i}`);
    expect(coveringDirs([...inputs, 'code/run.sh'], inputs.map((p) => p.replace('raw', 'count')))).toEqual(['code', 'raw']);
  });

  it('never covers an output: a pipeline reading a sibling under its own directory keeps its mounts narrow', () => {
    // Inputs inside a directory that also holds outputs: the narrowest directory that holds none.
    expect(coveringDirs(['p/raw/a', 'p/raw/b'], ['p/out-a', 'p/out-b'])).toEqual(['p/raw']);
    // An input inside an output directory, or holding one, is mounted as it is (as every input was before).
    expect(coveringDirs(['p/x/in'], ['p/x'])).toEqual(['p/x/in']);
    expect(coveringDirs(['a/b'], ['a/b/c'])).toEqual(['a/b']);
  });

  it('drops paths another one covers', () => {
    expect(coveringDirs(['raw/s1', 'raw', 'raw/s2/f'], ['out/x'])).toEqual(['raw']);
  });
});

describe('OverlapIndex (which unsettled part a datum reads, without a scan)', () => {
  it('finds what a scan in insertion order finds: the first path at, above or below the one asked', () => {
    // Random paths over a small alphabet, so that prefixes like a/ab and a-b (sorting between a and a/) occur.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const part = () => ['a', 'b', 'a-b', 'ab', 'a.b'][rnd(5)]!;
    const path = () => Array.from({ length: 1 + rnd(3) }, part).join('/');
    for (let round = 0; round < 50; round++) {
      const dirs = Array.from({ length: 1 + rnd(12) }, path);
      const index = new OverlapIndex(dirs.map((d, i) => [d, i] as const));
      for (let q = 0; q < 30; q++) {
        const p = path();
        const scan = dirs.findIndex((d) => isAtOrBelow(d, p) || isAtOrBelow(p, d));
        expect(index.overlapping(p) ?? -1).toBe(scan);
      }
    }
  });

  it("counts '' as above everything", () => {
    const index = new OverlapIndex([['x/y', 'first'], ['', 'whole']]);
    expect(index.overlapping('x')).toBe('first');
    expect(index.overlapping('z')).toBe('whole');
  });
});

describe('snapshots', () => {
  it('find entries at and below a directory by binary search, and paths by their map', () => {
    const snap = makeSnapshot('c', ['a/b', 'a', 'a-b', 'a/c/d', 'b'].map((p) => ({ path: p, mode: '100644', oid: p, contentKey: p })));
    expect(snap.entries.map((e) => e.path)).toEqual(['a', 'a-b', 'a/b', 'a/c/d', 'b']);
    expect(entriesUnder(snap, 'a').map((e) => e.path)).toEqual(['a', 'a/b', 'a/c/d']);
    expect(entriesUnder(snap, 'a/c').map((e) => e.path)).toEqual(['a/c/d']);
    expect(snap.byPath.get('a-b')?.oid).toBe('a-b');
  });
});

describe('snapshot entries', () => {
  it('keep their content key through JSON, as job data and batch files carry them', async () => {
    const { treeEntry } = await import('../../daemon/core/tree.js');
    const annexed = treeEntry('raw/a.txt', '120000', 'a'.repeat(40), 'MD5E-s6--b1946ac92492d2347c6235b4d2611184.txt');
    const inGit = treeEntry('code/run.sh', '100644', 'b'.repeat(40), undefined);
    expect(annexed.contentKey).toBe('MD5E-s6--b1946ac92492d2347c6235b4d2611184');
    expect(inGit.contentKey).toBe(`GIT-${'b'.repeat(40)}`);
    for (const e of [annexed, inGit]) expect(JSON.parse(JSON.stringify({ files: [{ rel: '', entry: e }] })).files[0].entry).toEqual({ path: e.path, mode: e.mode, oid: e.oid, contentKey: e.contentKey, ...(e.annexKey ? { annexKey: e.annexKey } : {}) });
  });
});
