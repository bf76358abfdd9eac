import { describe, expect, it } from 'vitest';
import { planDataset, type Plan } from '../../daemon/core/plan.js';
import { buildIndex, EMPTY_INDEX, type ResultRecord } from '../../daemon/core/result-index.js';
import { inputFingerprints } from '../../daemon/core/identity.js';
import { fakeSnapshot, specs } from '../helpers/fake-tree.js';

const COUNT = 'input: { pfs: { repo: raw, glob: "/sub-*" } }\ntransform: { cmd: [sh, -c], stdin: [wc -c] }\n';
const SUMMARY = 'input: { pfs: { repo: count, glob: "/" } }\ntransform: { cmd: [cat] }\n';
const raw = { 'raw/sub-01/a.txt': 'K1', 'raw/sub-02/a.txt': 'K1', 'raw/sub-03/a.txt': 'K3', 'count/spec.yml': 'S', 'summary/spec.yml': 'S2' };

const actions = (plan: Plan, pipeline: string) =>
  Object.fromEntries(plan.pipelines.find((p) => p.name === pipeline)!.datums.map((d) => [d.name, [d.action, d.reason]]));
const key = (plan: Plan, pipeline: string, datum: string) => plan.pipelines.find((p) => p.name === pipeline)!.datums.find((d) => d.name === datum)!.key;

describe('planDataset', () => {
  it('computes identical content once and links the rest', () => {
    const plan = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ count: COUNT }), index: EMPTY_INDEX });
    expect(actions(plan, 'count')).toEqual({
      'sub-01': ['compute', 'new datum'],
      'sub-02': ['link', 'same key as count/sub-01, computed in this run'],
      'sub-03': ['compute', 'new datum'],
    });
    expect(key(plan, 'count', 'sub-01')).toBe(key(plan, 'count', 'sub-02'));
    expect(key(plan, 'count', 'sub-01')).not.toBe(key(plan, 'count', 'sub-03'));
  });

  it('"identity: path" keeps matched names in the key', () => {
    const plan = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ count: COUNT + 'identity: path\n' }), index: EMPTY_INDEX });
    expect(new Set(plan.pipelines[0]!.datums.map((d) => d.action))).toEqual(new Set(['compute']));
  });

  it('skips datums whose marker records the current key, links known keys, removes vanished datums', () => {
    const first = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ count: COUNT }), index: EMPTY_INDEX });
    const k1 = key(first, 'count', 'sub-01');
    const k3 = key(first, 'count', 'sub-03');
    const rec: ResultRecord = { key: k1, pipeline: 'count', datum: 'sub-01', kind: 'computed', commit: 'a'.repeat(40), runCommit: 'a'.repeat(40) };
    const { 'raw/sub-03/a.txt': _gone, ...rest } = raw;
    const snap = fakeSnapshot({ ...rest, 'raw/sub-04/a.txt': 'K1' }, [['count', 'sub-01', k1], ['count', 'sub-03', k3]]);
    const plan = planDataset({ snapshot: snap, specs: specs({ count: COUNT }), index: buildIndex([rec]) });
    expect(actions(plan, 'count')).toEqual({
      'sub-01': ['skip', 'outputs are current'],
      'sub-02': ['link', `same key as count/sub-01 (${'a'.repeat(10)})`],
      'sub-04': ['link', `same key as count/sub-01 (${'a'.repeat(10)})`],
      'sub-03': ['remove', 'the input no longer produces this datum'],
    });
  });

  it('explains a recompute: which input changed, or that the transform did', () => {
    const first = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ count: COUNT }), index: EMPTY_INDEX });
    const d1 = first.pipelines[0]!.datums[0]!;
    const rec: ResultRecord = { key: d1.key, pipeline: 'count', datum: 'sub-01', kind: 'computed', commit: 'a'.repeat(40), runCommit: 'a'.repeat(40), transformKey: first.pipelines[0]!.transform!.key, inputs: inputFingerprints(d1.datum!) };
    const changed = planDataset({ snapshot: fakeSnapshot({ ...raw, 'raw/sub-01/a.txt': 'K9' }, [['count', 'sub-01', d1.key]]), specs: specs({ count: COUNT }), index: buildIndex([rec]) });
    expect(actions(changed, 'count')['sub-01']).toEqual(['compute', 'inputs changed: raw/sub-01/a.txt']);
    const newCmd = planDataset({ snapshot: fakeSnapshot(raw, [['count', 'sub-01', d1.key]]), specs: specs({ count: COUNT.replace('wc -c', 'wc -l') }), index: buildIndex([rec]) });
    expect(actions(newCmd, 'count')['sub-01']![1]).toMatch(/^transform changed/);
  });

  it('a code file is part of the transform: changing it re-keys every datum of that pipeline only', () => {
    const withCode = COUNT.replace('stdin: [wc -c] }', 'stdin: [wc -c], code: [code/x.sh] }');
    const a = planDataset({ snapshot: fakeSnapshot({ ...raw, 'code/x.sh': 'C1' }), specs: specs({ count: withCode, other: COUNT }), index: EMPTY_INDEX });
    const b = planDataset({ snapshot: fakeSnapshot({ ...raw, 'code/x.sh': 'C2' }), specs: specs({ count: withCode, other: COUNT }), index: EMPTY_INDEX });
    expect(key(a, 'count', 'sub-01')).not.toBe(key(b, 'count', 'sub-01'));
    expect(key(a, 'other', 'sub-01')).toBe(key(b, 'other', 'sub-01'));
    const missing = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ count: withCode }), index: EMPTY_INDEX });
    expect(missing.pipelines[0]!.status).toBe('invalid');
    expect(missing.pipelines[0]!.error!.field).toBe('transform.code[0]');
  });

  it('orders pipelines by the DAG; downstream sees only upstream outputs and waits for pending ones', () => {
    const first = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ summary: SUMMARY, count: COUNT }), index: EMPTY_INDEX });
    expect(first.pipelines.map((p) => p.name)).toEqual(['count', 'summary']);
    // No outputs yet: spec.yml alone is not an input. The datum that will read them is shown waiting.
    expect(first.pipelines[1]!.datums.map((d) => [d.name, d.action, d.reason])).toEqual([['', 'blocked', 'waiting for upstream count/sub-01 (compute)']]);
    expect(first.pipelines[1]!.notes.join()).toMatch(/no files yet/);

    const k = (d: string) => key(first, 'count', d);
    const done = fakeSnapshot({ ...raw, 'count/sub-01/n.txt': 'N1', 'count/sub-02/n.txt': 'N1', 'count/sub-03/n.txt': 'N3', 'count/stray.txt': 'X' }, [['count', 'sub-01', k('sub-01')], ['count', 'sub-02', k('sub-02')], ['count', 'sub-03', k('sub-03')]]);
    const second = planDataset({ snapshot: done, specs: specs({ summary: SUMMARY, count: COUNT }), index: EMPTY_INDEX });
    const summary = second.pipelines[1]!.datums[0]!;
    expect(summary.action).toBe('compute');
    expect(summary.datum!.inputs[0]!.files.map((f) => f.rel)).toEqual(['sub-01/n.txt', 'sub-02/n.txt', 'sub-03/n.txt']);

    const changed = fakeSnapshot({ ...raw, 'raw/sub-03/a.txt': 'K4', 'count/sub-01/n.txt': 'N1', 'count/sub-02/n.txt': 'N1', 'count/sub-03/n.txt': 'N3' }, [['count', 'sub-01', k('sub-01')], ['count', 'sub-02', k('sub-02')], ['count', 'sub-03', k('sub-03')]]);
    const third = planDataset({ snapshot: changed, specs: specs({ summary: SUMMARY, count: COUNT }), index: EMPTY_INDEX });
    expect(actions(third, 'count')['sub-03']![0]).toBe('compute');
    expect(actions(third, 'summary')['']).toEqual(['blocked', 'waiting for upstream count/sub-03 (compute)']);
  });

  it('an invalid spec disables it and its downstream, nothing else', () => {
    const plan = planDataset({
      snapshot: fakeSnapshot(raw),
      specs: specs({ count: 'input: { pfs: { repo: raw, glob: "sub-*" } }\ntransform: { cmd: [sh] }\n', summary: SUMMARY, other: COUNT }),
      index: EMPTY_INDEX,
    });
    const status = Object.fromEntries(plan.pipelines.map((p) => [p.name, p.status]));
    expect(status).toEqual({ count: 'invalid', summary: 'disabled', other: 'ready' });
    expect(plan.pipelines.find((p) => p.name === 'summary')!.error!.message).toMatch(/upstream pipeline "count" is invalid/);
    expect(plan.pipelines.find((p) => p.name === 'other')!.datums.length).toBe(3);
  });

  it('refuses pipelines reading each other in a cycle', () => {
    const plan = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ a: SUMMARY.replace('count', 'b'), b: SUMMARY.replace('count', 'a') }), index: EMPTY_INDEX });
    expect(plan.pipelines.map((p) => p.status)).toEqual(['invalid', 'invalid']);
    expect(plan.pipelines[0]!.error!.message).toMatch(/cycle/);
  });
});

describe('waiting and blocking through chains', () => {
  const A = 'input: { pfs: { repo: raw, glob: "/sub-*" } }\ntransform: { cmd: [sh, -c], stdin: [a] }\n';
  const B = 'input: { pfs: { repo: a, glob: "/sub-*" } }\ntransform: { cmd: [sh, -c], stdin: [b] }\n';
  const C = 'input: { pfs: { repo: b, glob: "/" } }\ntransform: { cmd: [sh, -c], stdin: [c] }\n';
  const D = 'input: { pfs: { repo: b, glob: "/sub-01" } }\ntransform: { cmd: [sh, -c], stdin: [d] }\n';
  const chain = specs({ a: A, b: B, c: C, d: D });

  /** The chain with sub-01 and sub-02 computed all the way down; sub-03 is new raw data. */
  function settledWithNewSubject(): { snapshot: ReturnType<typeof fakeSnapshot>; index: typeof EMPTY_INDEX } {
    const files: Record<string, string> = { 'raw/sub-01/x': 'R1', 'raw/sub-02/x': 'R2', 'a/spec.yml': 'S', 'b/spec.yml': 'S', 'c/spec.yml': 'S', 'd/spec.yml': 'S' };
    let markers: [string, string, string][] = [];
    // Plan repeatedly, "computing" each compute, until everything is current.
    for (let i = 0; i < 6; i++) {
      const p = planDataset({ snapshot: fakeSnapshot(files, markers), specs: chain, index: EMPTY_INDEX });
      const todo = p.pipelines.flatMap((pp) => pp.datums.filter((d) => d.action === 'compute'));
      if (!todo.length) break;
      for (const d of todo) {
        files[`${d.outputDir}/out`] = `O-${d.key.slice(0, 8)}`;
        markers = [...markers.filter(([pl, n]) => !(pl === d.pipeline && n === d.name)), [d.pipeline, d.name, d.key]];
      }
    }
    files['raw/sub-03/x'] = 'R3';
    return { snapshot: fakeSnapshot(files, markers), index: EMPTY_INDEX };
  }

  it('a new subject upstream: plan says what schedule will do, down the whole chain', () => {
    const { snapshot, index } = settledWithNewSubject();
    const plan = planDataset({ snapshot, specs: chain, index });
    expect(actions(plan, 'a')['sub-03']).toEqual(['compute', 'new datum']);
    // b has no datum for sub-03 yet (no outputs of a/sub-03): the one it will have waits.
    expect(actions(plan, 'b')['sub-03']).toEqual(['blocked', 'waiting for upstream a/sub-03 (compute)']);
    expect(actions(plan, 'b')['sub-01']![0]).toBe('skip');
    // c reads all of b: it waits (never "skip: outputs are current"), naming the root cause.
    expect(actions(plan, 'c')['']).toEqual(['blocked', 'waiting for upstream a/sub-03 (compute)']);
    // d reads only b/sub-01, which nothing changes.
    expect(actions(plan, 'd')['sub-01']![0]).toBe('skip');
  });

  it('a failure upstream blocks everything that depends on it, however far down, naming the failed datum', () => {
    const { snapshot } = settledWithNewSubject();
    const first = planDataset({ snapshot, specs: chain, index: EMPTY_INDEX });
    const failedKey = first.pipelines[0]!.datums.find((d) => d.name === 'sub-03')!.key;
    const index = buildIndex([], [{ key: failedKey, pipeline: 'a', datum: 'sub-03', exit: 3, reason: 'exit 3', stderrTail: '', tries: 1, at: '' }]);
    const plan = planDataset({ snapshot, specs: chain, index });
    expect(actions(plan, 'b')['sub-03']).toEqual(['blocked', 'upstream a/sub-03 failed (exit 3)']);
    expect(actions(plan, 'c')['']).toEqual(['blocked', 'upstream a/sub-03 failed (exit 3)']);
  });

  it('a combinator downstream cannot be told which datum will appear: its readers wait, with a note', () => {
    const J = 'input: { cross: [ { pfs: { repo: a, glob: "/sub-*" } }, { pfs: { repo: raw, glob: "/sub-01" } } ] }\ntransform: { cmd: [sh, -c], stdin: [j] }\n';
    const K = 'input: { pfs: { repo: j, glob: "/" } }\ntransform: { cmd: [sh, -c], stdin: [k] }\n';
    const files = { 'raw/sub-01/x': 'R1', 'a/sub-01/out': 'O1', 'j/sub-01+sub-01/out': 'J1', 'k/out': 'K' };
    const s0 = specs({ a: A, j: J, k: K });
    const p0 = planDataset({ snapshot: fakeSnapshot({ ...files }, []), specs: s0, index: EMPTY_INDEX });
    const keyOf = (pl: string, n: string, plan = p0) => plan.pipelines.find((p) => p.name === pl)!.datums.find((d) => d.name === n)?.key ?? '';
    const markers: [string, string, string][] = [['a', 'sub-01', keyOf('a', 'sub-01')]];
    const p1 = planDataset({ snapshot: fakeSnapshot(files, markers), specs: s0, index: EMPTY_INDEX });
    markers.push(['j', 'sub-01+sub-01', keyOf('j', 'sub-01+sub-01', p1)]);
    const p2 = planDataset({ snapshot: fakeSnapshot(files, markers), specs: s0, index: EMPTY_INDEX });
    markers.push(['k', '', keyOf('k', '', p2)]);
    const plan = planDataset({ snapshot: fakeSnapshot({ ...files, 'raw/sub-02/x': 'R2' }, markers), specs: s0, index: EMPTY_INDEX });
    expect(actions(plan, 'a')['sub-02']![0]).toBe('compute');
    expect(plan.pipelines.find((p) => p.name === 'j')!.notes.join()).toMatch(/more datums may appear once upstream a\/sub-02 is settled/);
    expect(actions(plan, 'k')['']).toEqual(['blocked', 'waiting for upstream a/sub-02 (compute)']);
  });
});
