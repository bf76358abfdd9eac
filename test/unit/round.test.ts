/** decideRound: what a scheduling round runs, reuses, links, waits for and removes, with no git at all. */
import { describe, expect, it } from 'vitest';
import type { DatumPlan, Plan, PipelinePlan } from '../../daemon/core/plan.js';
import { decideRound, resultId, type Round } from '../../daemon/core/round.js';
import type { ResultRecord } from '../../daemon/core/result-index.js';
import { specOf } from '../helpers/fake-tree.js';

const SPEC = specOf('p', 'input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: ["true"] }\n');
const TRANSFORM = { key: 't', cmd: ['true'], stdin: [], env: {}, image: null, code: [] };
const RESULT: ResultRecord = { key: 'kx', pipeline: 'p', datum: 'old', kind: 'computed', commit: 'c'.repeat(40), runCommit: 'c'.repeat(40) };

const datum = (name: string, action: DatumPlan['action'], key = `k-${name}`, source?: DatumPlan['source']): DatumPlan => ({
  pipeline: 'p',
  name,
  key,
  action,
  reason: action,
  outputDir: `p/${name}`,
  marker: `p/.minipach/datums/${name}.datum`,
  source,
});
const A = datum('a', 'compute');
const B = datum('b', 'compute');
const LINKED = datum('l', 'link', 'kx', RESULT);
const WAITING = datum('w', 'link', 'k-a', { pending: A });
const GONE = datum('g', 'remove');
const SKIP = datum('s', 'skip');
const BLOCKED = datum('x', 'blocked');

const plan = (datums: DatumPlan[], status: PipelinePlan['status'] = 'ready'): Plan => ({
  commit: 'h'.repeat(40),
  pipelines: [{ name: 'p', file: 'p/spec.yml', status, notes: [], upstream: [], spec: SPEC, transform: TRANSFORM, datums }],
  hashed: 0,
});

/** The names in each part of a round. */
const names = (r: Round | undefined) =>
  r && { run: r.run.map((w) => w.datum.name), reuse: r.reuse.map((w) => w.datum.name), link: r.link.map((w) => w.datum.name), awaitSource: r.awaitSource.map((w) => w.datum.name), remove: r.remove.map((w) => w.datum.name) };

const none = { run: [], reuse: [], link: [], awaitSource: [], remove: [] };

describe('decideRound', () => {
  const cases: { name: string; plan: Plan; failed?: string[]; computed?: DatumPlan[]; expected: ReturnType<typeof names> }[] = [
    { name: 'nothing but skips and blocked datums: the schedule is done', plan: plan([SKIP, BLOCKED]), expected: undefined },
    { name: 'new datums are run', plan: plan([A, B, SKIP]), expected: { ...none, run: ['a', 'b'] } },
    { name: 'a datum that failed in this schedule is not tried again', plan: plan([A, B]), failed: ['k-a'], expected: { ...none, run: ['b'] } },
    { name: 'only failed work left: done', plan: plan([A]), failed: ['k-a'], expected: undefined },
    { name: 'a result computed before the branch moved is reused, not recomputed', plan: plan([A, B]), computed: [A], expected: { ...none, run: ['b'], reuse: ['a'] } },
    { name: 'a result computed for other inputs (another key) is not reused', plan: plan([A]), computed: [datum('a', 'compute', 'k-other')], expected: { ...none, run: ['a'] } },
    { name: 'a link to a result on the branch is placed this round', plan: plan([LINKED]), expected: { ...none, link: ['l'] } },
    { name: 'a link to a datum computed this round waits for it', plan: plan([A, WAITING]), expected: { ...none, run: ['a'], awaitSource: ['w'] } },
    { name: 'a link whose source failed is dropped', plan: plan([A, WAITING]), failed: ['k-a'], expected: undefined },
    { name: 'removals are carried out', plan: plan([GONE, SKIP]), expected: { ...none, remove: ['g'] } },
    { name: 'datums of invalid or disabled pipelines never run', plan: plan([A, GONE], 'invalid'), expected: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const round = decideRound(c.plan, { failed: new Set(c.failed ?? []), computed: new Set((c.computed ?? []).map(resultId)) });
      expect(names(round)).toEqual(c.expected);
    });
  }

  it('a link carries the result it reuses', () => {
    expect(decideRound(plan([LINKED]), { failed: new Set(), computed: new Set() })!.link[0]!.source).toBe(RESULT);
  });
});
