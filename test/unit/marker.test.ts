import { describe, expect, it } from 'vitest';
import { datumNameOfMarker, markerPath, markersByDatum, markerShard } from '../../daemon/core/identity.js';
import { planDataset } from '../../daemon/core/plan.js';
import { EMPTY_INDEX } from '../../daemon/core/result-index.js';
import { fakeSnapshot, specs } from '../helpers/fake-tree.js';

/** FNV-1a 32 over the UTF-8 bytes, high bits folded into the low byte: the shard as docs/decisions.md defines it. */
function shardByDefinition(name: string): string {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(name, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  h ^= h >>> 16;
  h ^= h >>> 8;
  return (h & 0xff).toString(16).padStart(2, '0');
}

const NAMES = ['sub-01', 'a', 'ab/c', 'x y', 'café', 'データ/1', '😀', 'sub-1'.repeat(40)];

describe('marker layout', () => {
  it("puts a datum's marker in the shard of its name, and reads the name back from either layout", () => {
    for (const name of NAMES) {
      expect(markerShard(name)).toBe(shardByDefinition(name));
      const path = markerPath('count', name);
      expect(path).toBe(`count/.minipach/shards/${shardByDefinition(name)}/${name}.datum`);
      expect(datumNameOfMarker('count', path)).toBe(name);
      expect(datumNameOfMarker('count', `count/.minipach/datums/${name}.datum`)).toBe(name);
      expect(datumNameOfMarker('other', path)).toBeUndefined();
    }
    expect(markerPath('summary', '')).toBe('summary/.minipach/root.datum');
    expect(datumNameOfMarker('summary', 'summary/.minipach/root.datum')).toBe('');
    for (const notMarker of ['count/.minipach/shards/zz/a.datum', 'count/.minipach/shards/ab.datum', 'count/.minipach/shards/ab/.datum', 'count/.minipach/datums/.datum', 'count/.minipach/other/a.datum', 'count/a.datum', 'count/.minipach/shards/ab/a.txt']) {
      expect(datumNameOfMarker('count', notMarker)).toBeUndefined();
    }
  });

  it('groups markers by datum, and keeps the older layout\'s where a datum has one in each', () => {
    const paths = ['count/.minipach/datums/a.datum', 'count/.minipach/root.datum', markerPath('count', 'a'), markerPath('count', 'b'), 'count/.minipach/notes.txt'];
    const found = markersByDatum('count', paths.map((path) => ({ path })));
    expect([...found].map(([name, e]) => [name, e.path])).toEqual([
      ['a', 'count/.minipach/datums/a.datum'],
      ['', 'count/.minipach/root.datum'],
      ['b', markerPath('count', 'b')],
    ]);
  });

  it('spreads 10^4 subjects over all 256 shards, none with more than twice its share', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const s = markerShard(`sub-${String(i).padStart(5, '0')}`);
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    expect(counts.size).toBe(256);
    expect(Math.max(...counts.values())).toBeLessThan((2 * 10_000) / 256);
  });

  it('plans with markers of both layouts: current ones skip, a recompute keeps its marker where it is, new datums go to the shards', () => {
    const COUNT = 'input: { pfs: { repo: raw, glob: "/sub-*" } }\ntransform: { cmd: [sh, -c], stdin: [wc -c] }\n';
    const raw = { 'raw/sub-01/a.txt': 'K1', 'raw/sub-02/a.txt': 'K2', 'raw/sub-03/a.txt': 'K3', 'count/spec.yml': 'S' };
    const first = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ count: COUNT }), index: EMPTY_INDEX });
    const keyOf = (name: string) => first.pipelines[0]!.datums.find((d) => d.name === name)!.key;
    const snapshot = fakeSnapshot(
      { ...raw, 'raw/sub-02/a.txt': 'K9', 'raw/sub-04/a.txt': 'K4' },
      [
        ['count', 'sub-01', keyOf('sub-01'), 'legacy'],
        ['count', 'sub-02', keyOf('sub-02'), 'legacy'],
        ['count', 'sub-03', keyOf('sub-03')],
        ['count', 'gone', 'f'.repeat(64), 'legacy'],
      ],
    );
    const plan = planDataset({ snapshot, specs: specs({ count: COUNT }), index: EMPTY_INDEX });
    const byName = new Map(plan.pipelines[0]!.datums.map((d) => [d.name, d]));
    expect([...byName].map(([n, d]) => [n, d.action, d.marker])).toEqual([
      ['sub-01', 'skip', 'count/.minipach/datums/sub-01.datum'],
      ['sub-02', 'compute', 'count/.minipach/datums/sub-02.datum'],
      ['sub-03', 'skip', markerPath('count', 'sub-03')],
      ['sub-04', 'compute', markerPath('count', 'sub-04')],
      ['gone', 'remove', 'count/.minipach/datums/gone.datum'],
    ]);
  });
});
