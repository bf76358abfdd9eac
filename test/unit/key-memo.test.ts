/**
 * The datum-key memo: a plan with the memo of an earlier plan equals the plan made without it, and hashes
 * only the datums whose inputs (or whose pipeline's transform, identity or input spec) changed.
 */
import { describe, expect, it } from 'vitest';
import { KeyMemoLookup, MemoPipeline, memoOfPlan, type KeyMemo } from '../../daemon/core/key-memo.js';
import { planDataset } from '../../daemon/core/plan.js';
import { markerPath } from '../../daemon/core/identity.js';
import { EMPTY_INDEX } from '../../daemon/core/result-index.js';
import type { Datum } from '../../daemon/core/datums.js';
import { fakeSnapshot, specs } from '../helpers/fake-tree.js';

const COUNT = 'input: { pfs: { repo: raw, glob: "/sub-*" } }\ntransform: { cmd: [sh, -c], stdin: [wc -c] }\n';
const SUMMARY = 'input: { pfs: { repo: count, glob: "/*" } }\ntransform: { cmd: [cat] }\n';
const raw = { 'raw/sub-01/a.txt': 'K1', 'raw/sub-02/a.txt': 'K2', 'raw/sub-02/b.txt': 'K4', 'raw/sub-03/a.txt': 'K3', 'count/spec.yml': 'S', 'summary/spec.yml': 'S2' };

const planOf = (files: Record<string, string>, pipelines: Record<string, string>, memo?: KeyMemo) => planDataset({ snapshot: fakeSnapshot(files), specs: specs(pipelines), index: EMPTY_INDEX, memo });
const keysOf = (p: ReturnType<typeof planOf>) => p.pipelines.flatMap((x) => x.datums.map((d) => [x.name, d.name, d.key, d.action, d.reason]));

describe('the datum-key memo', () => {
  const first = planOf(raw, { count: COUNT, summary: SUMMARY });
  const memo = (changed: string[]): KeyMemo => ({ commit: 'c'.repeat(40), changed, pipelines: memoOfPlan(first.pipelines) });

  it('the same commit: every key from the memo, the plan unchanged', () => {
    const again = planOf(raw, { count: COUNT, summary: SUMMARY }, memo([]));
    expect(again.hashed).toBe(0);
    expect(keysOf(again)).toEqual(keysOf(first));
  });

  it('datums found current: their marker blob ids are remembered too, and the re-plan still finds them current', () => {
    const count = first.pipelines.find((p) => p.name === 'count')!;
    const markers = count.datums.map((d): [string, string, string] => ['count', d.name, d.key]);
    const snapshot = fakeSnapshot(raw, markers);
    const current = planDataset({ snapshot, specs: specs({ count: COUNT }), index: EMPTY_INDEX });
    expect(current.pipelines[0]!.datums.every((d) => d.action === 'skip')).toBe(true);
    const remembered = memoOfPlan(current.pipelines, snapshot.byPath);
    const rows = remembered.get('count')!;
    expect(rows.names.length).toBeGreaterThan(0);
    rows.names.forEach((name, r) => expect(rows.markers[r]).toBe(snapshot.byPath.get(markerPath('count', name))!.oid));
    const again = planDataset({ snapshot, specs: specs({ count: COUNT }), index: EMPTY_INDEX, memo: { commit: snapshot.commit, changed: [], pipelines: remembered } });
    expect(again.hashed).toBe(0);
    expect(keysOf(again)).toEqual(keysOf(current));
  });

  it('one file changed: its datum is hashed again, the rest reused, and the plan equals a plan without memo', () => {
    const files = { ...raw, 'raw/sub-02/b.txt': 'K5' };
    const withMemo = planOf(files, { count: COUNT, summary: SUMMARY }, memo(['raw/sub-02/b.txt']));
    expect(withMemo.hashed).toBe(1);
    expect(keysOf(withMemo)).toEqual(keysOf(planOf(files, { count: COUNT, summary: SUMMARY })));
    expect(keysOf(withMemo)).not.toEqual(keysOf(first));
  });

  it('a file gone from a datum, a new datum, a changed transform: hashed again', () => {
    const gone: Record<string, string> = { ...raw, 'raw/sub-04/a.txt': 'K9' };
    delete gone['raw/sub-02/b.txt'];
    const p = planOf(gone, { count: COUNT, summary: SUMMARY }, memo(['raw/sub-02/b.txt', 'raw/sub-04/a.txt']));
    expect(p.hashed).toBe(2);
    expect(keysOf(p)).toEqual(keysOf(planOf(gone, { count: COUNT, summary: SUMMARY })));
    const edited = COUNT.replace('wc -c', 'wc -l');
    const t = planOf(raw, { count: edited, summary: SUMMARY }, memo(['count/spec.yml']));
    expect(t.hashed).toBe(3);
    expect(keysOf(t)).toEqual(keysOf(planOf(raw, { count: edited, summary: SUMMARY })));
  });

  it("an upstream datum's marker that came or went touches what reads its output directory, and only that", () => {
    // Markers decide which of a pipeline's outputs are seen downstream: one that came (or went) changes
    // what a datum reading count/sub-01 sees, though no file under count/sub-01 changed.
    // Either marker layout (core/identity.ts): markers written before the shards are still where they were.
    for (const marker of [markerPath('count', 'sub-01'), 'count/.minipach/datums/sub-01.datum']) {
      const lookup = new KeyMemoLookup({
        commit: 'c'.repeat(40),
        changed: [marker],
        pipelines: new Map([['summary', new MemoPipeline('s', ['sub-01', 'sub-02'], ['count\0count/sub-01', 'count\0count/sub-02'], ['k1', 'k2'], ['', ''])]]),
      });
      const reading = (dir: string): Datum => ({ name: dir.split('/')[1]!, inputs: [{ name: 'count', repo: 'count', path: dir, matched: dir.split('/')[1]!, files: [] }] });
      const summary = lookup.pipeline('summary', 's');
      expect(lookup.entry(summary, reading('count/sub-01'))).toBeUndefined();
      expect(lookup.entry(summary, reading('count/sub-02'))?.key).toBe('k2');
      // Another signature (transform, identity, input spec or key version): nothing from the memo.
      expect(lookup.pipeline('summary', 'other')).toBeUndefined();
    }
  });
});
