import { describe, expect, it } from 'vitest';
import { overviewOf, triggerOf } from '../../daemon/core/overview.js';
import { planDataset, type Plan } from '../../daemon/core/plan.js';
import { buildIndex, EMPTY_INDEX, type ResultRecord } from '../../daemon/core/result-index.js';
import { inputFingerprints } from '../../daemon/core/identity.js';
import { fakeSnapshot, specs } from '../helpers/fake-tree.js';

const UP = 'input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: [sh, -c], stdin: [tr a-z A-Z] }\n';
const COUNT = 'input: { pfs: { repo: up, glob: "/*" } }\ntransform: { cmd: [wc] }\n';
const files = { 'raw/a/x': 'K1', 'raw/b/x': 'K2', 'raw/c/x': 'K3', 'up/spec.yml': 'S', 'count/spec.yml': 'S2' };
const C = 'c'.repeat(40);

describe('the overview the dashboard and the report draw', () => {
  it('states from the plan, the index and the queue; the DAG; provenance; cost per day', () => {
    const first = planDataset({ snapshot: fakeSnapshot(files), specs: specs({ up: UP, count: COUNT }), index: EMPTY_INDEX });
    const up = first.pipelines.find((p) => p.name === 'up')!.datums;
    const keyOf = (n: string) => up.find((d) => d.name === n)!.key;
    const a: ResultRecord = { key: keyOf('a'), pipeline: 'up', datum: 'a', kind: 'computed', commit: C, runCommit: C, inputs: inputFingerprints(up.find((d) => d.name === 'a')!.datum!), resources: { wall: 2, cpu: 7200 } };
    const failure = { key: keyOf('b'), pipeline: 'up', datum: 'b', exit: 3, reason: 'exit 3', stderrTail: 'bad', tries: 2, at: '2026-12-01T00:00:00Z' };
    const index = buildIndex([a], [failure]);
    const plan = planDataset({ snapshot: fakeSnapshot({ ...files, 'up/a/X': 'K9' }, [['up', 'a', keyOf('a')]]), specs: specs({ up: UP, count: COUNT }), index });
    const o = overviewOf({ dataset: 'study', branch: 'main', plan, index, jobs: [{ key: keyOf('c'), state: 'active', attempts: 1, ranOn: 'Slurm task 7_0' }], commitTimes: new Map([[C, Date.UTC(2026, 11, 1, 12) / 1000]]), cpuHourCost: 0.5 });
    expect(o.repos).toEqual(['raw']);
    expect(o.pipelines.map((p) => [p.name, p.inputs])).toEqual([['up', ['raw']], ['count', ['up']]]);
    const rows = Object.fromEntries(o.pipelines[0]!.datums.map((d) => [d.name, d]));
    expect(rows['a']).toMatchObject({ state: 'done', wall: 2, cpu: 7200, commit: C, rerun: `datalad rerun --onto= --branch=rerun-cccccccc ${C}`, inputs: [{ name: 'raw', files: [{ path: 'raw/a/x', key: 'K1' }] }] });
    expect(rows['b']).toMatchObject({ state: 'failed', exit: 3, stderrTail: 'bad', tries: 2 });
    expect(rows['c']).toMatchObject({ state: 'running', ranOn: 'Slurm task 7_0' });
    expect(o.pipelines[0]!.counts).toEqual({ done: 1, running: 1, queued: 0, failed: 1, blocked: 0 });
    // count/a reads up/a's output: its upstream is up/a; count/b waits for the failed up/b.
    const count = Object.fromEntries(o.pipelines[1]!.datums.map((d) => [d.name, d.state]));
    expect(count['a']).toBe('queued');
    expect(o.cost).toEqual([{ pipeline: 'up', day: '2026-12-01', results: 1, cpuHours: 2, wallHours: 2 / 3600 }]);
    expect(o.cpuHourCost).toBe(0.5);
  });

  it('a done datum names the upstream datums whose outputs it read (the deepest output directory holding each input)', () => {
    const withOutput = { ...files, 'up/a/X': 'K9' };
    const of = (plan: Plan, p: string, n: string) => plan.pipelines.find((x) => x.name === p)!.datums.find((d) => d.name === n)!;
    const rec = (plan: Plan, p: string, n: string): ResultRecord => ({ key: of(plan, p, n).key, pipeline: p, datum: n, kind: 'computed', commit: C, runCommit: C, inputs: inputFingerprints(of(plan, p, n).datum!) });
    // up/a's result first, then count/a's (planned once up/a is current), then the plan with both current.
    const first = planDataset({ snapshot: fakeSnapshot(withOutput), specs: specs({ up: UP, count: COUNT }), index: EMPTY_INDEX });
    const upA = rec(first, 'up', 'a');
    const second = planDataset({ snapshot: fakeSnapshot(withOutput, [['up', 'a', upA.key]]), specs: specs({ up: UP, count: COUNT }), index: buildIndex([upA]) });
    const countA = rec(second, 'count', 'a');
    const index = buildIndex([upA, countA]);
    const plan = planDataset({ snapshot: fakeSnapshot(withOutput, [['up', 'a', upA.key], ['count', 'a', countA.key]]), specs: specs({ up: UP, count: COUNT }), index });
    const o = overviewOf({ dataset: 'study', branch: 'main', plan, index });
    expect(o.pipelines[1]!.datums.find((d) => d.name === 'a')!).toMatchObject({ state: 'done', upstream: ['up/a'], inputs: [{ name: 'up', files: [{ path: 'up/a/X', key: 'K9' }] }] });
    expect(o.pipelines[0]!.datums.find((d) => d.name === 'a')!.upstream).toEqual([]);
  });

  it('names what started a run', () => {
    expect(['push main 1..2', 'webhook gitea push main 1..2', 'objects: put raw/x', 'minipach watch', 'minipach schedule', 'minipach retry', 'daemon started', 'poll', 'retry after: x'].map(triggerOf)).toEqual([
      'push', 'webhook', 'upload', 'watch', 'manual', 'retry', 'start', 'poll', 'other',
    ]);
  });
});
