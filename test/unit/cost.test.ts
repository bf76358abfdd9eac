import { describe, expect, it } from 'vitest';
import { attributeCost, forecastPlan, median } from '../../daemon/core/cost.js';
import { planDataset } from '../../daemon/core/plan.js';
import { buildIndex, EMPTY_INDEX, type ResultRecord } from '../../daemon/core/result-index.js';
import { fakeSnapshot, specs } from '../helpers/fake-tree.js';

const COUNT = 'input: { pfs: { repo: raw, glob: "/sub-*" } }\ntransform: { cmd: [sh, -c], stdin: [wc -c] }\n';
const raw = { 'raw/sub-01/a.txt': 'K1', 'raw/sub-02/a.txt': 'K2', 'raw/sub-03/a.txt': 'K3', 'count/spec.yml': 'S' };

const record = (datum: string, transformKey: string, wall: number, cpu?: number, kind: 'computed' | 'linked' = 'computed'): ResultRecord => ({
  key: `key-${datum}-${transformKey}`,
  pipeline: 'count',
  datum,
  kind,
  commit: 'a'.repeat(40),
  runCommit: 'a'.repeat(40),
  transformKey,
  resources: { wall, cpu },
  ...(kind === 'linked' ? { source: { pipeline: 'count', datum: 'sub-01' } } : {}),
});

describe('forecastPlan', () => {
  const plan = planDataset({ snapshot: fakeSnapshot(raw), specs: specs({ count: COUNT }), index: EMPTY_INDEX });
  const current = plan.pipelines[0]!.transform!.key;

  it('says "no history" where the pipeline never ran, and leaves it out of the totals', () => {
    const f = forecastPlan(plan, EMPTY_INDEX, 2);
    expect(f.pipelines).toEqual([{ pipeline: 'count', compute: 3, waiting: 0, basis: 'no history', samples: 0, medianWall: undefined, medianCpu: undefined, wall: undefined, cpuHours: undefined, price: undefined }]);
    expect(f).toMatchObject({ wall: 0, cpuHours: 0, price: 0, unknown: ['count'] });
  });

  it('uses the median per datum of the same transform, and prices CPU-hours', () => {
    const index = buildIndex([record('x', current, 10, 3600), record('y', current, 30, 7200), record('z', current, 1000, 3600), record('w', 'other', 5, 1)]);
    const f = forecastPlan(plan, index, 2);
    expect(f.pipelines[0]).toMatchObject({ basis: 'history', samples: 3, medianWall: 30, medianCpu: 3600, wall: 90, cpuHours: 3, price: 6 });
    expect(f).toMatchObject({ wall: 90, cpuHours: 3, price: 6, unknown: [] });
  });

  it('after a transform change, forecasts from the most recent previous transform and says so', () => {
    const index = buildIndex([record('x', 'older', 100), record('y', 'previous', 4, 2), record('z', 'previous', 6, 4)]);
    const f = forecastPlan(plan, index);
    expect(f.pipelines[0]).toMatchObject({ basis: 'previous transform', samples: 2, medianWall: 5, wall: 15, price: undefined });
    expect(f.price).toBeUndefined();
  });
});

describe('attributeCost', () => {
  it('charges computed results their resources and linked ones nothing, naming what they reuse', () => {
    const computed = record('sub-01', 't', 10, 1800);
    const linked = { ...record('sub-02', 't', 10, 1800, 'linked'), key: computed.key };
    const index = buildIndex([computed, linked]);
    const r = attributeCost(
      [
        { pipeline: 'count', name: 'sub-01', key: computed.key },
        { pipeline: 'count', name: 'sub-02', key: computed.key },
        { pipeline: 'count', name: 'sub-03', key: 'unknown' },
      ],
      index,
      4,
    );
    expect(r.datums.map((d) => [d.datum, d.kind, d.reuses, d.wall])).toEqual([
      ['sub-01', 'computed', undefined, 10],
      ['sub-02', 'linked', 'count/sub-01', 0],
      ['sub-03', 'unknown', undefined, 0],
    ]);
    expect(r).toMatchObject({ computed: 1, linked: 1, wall: 10, cpuHours: 0.5, price: 2 });
  });

  it('median', () => {
    expect(median([])).toBeUndefined();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
});
