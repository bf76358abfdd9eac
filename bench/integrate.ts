/**
 * Integrating K results at once (the planning-at-100k issue's item 4): a planning dataset of K annexed
 * subjects, its plan, and K results handed to the real committer in one call, as the native executor in
 * this process hands them in (outputs with their bytes, a `datalad run` record each); then the re-plan.
 * Only the commands' execution is left out: what is measured is the committer (one fast-import of K run
 * commits, the branch and its working tree moving, the shared results ref) and the plan after it.
 */
import { performance } from 'node:perf_hooks';
import { openDataset } from '../daemon/adapters/dataset.js';
import { gitBlobOid } from '../daemon/core/hash.js';
import type { DatumPlan } from '../daemon/core/plan.js';
import { Committer, type ComputedResult } from '../daemon/results/committer.js';
import { planAtHead } from '../daemon/schedule/plan-at-head.js';
import { planningDataset } from './workloads.js';

export interface IntegrationFigures {
  readonly results: number;
  /** Seconds of the one `integrate` call. */
  readonly seconds: number;
}

/**
 * Makes the dataset, plans it, integrates every datum's result in one go (or `per` at a time, each on the
 * last, as a schedule does while the rest compute); returns the dataset's directory too.
 */
export async function integrateAtOnce(root: string, n: number, per = n): Promise<IntegrationFigures & { dir: string }> {
  const dir = await planningDataset(root, n);
  const ds = await openDataset(dir);
  const { plan, head } = await planAtHead(ds);
  const pipeline = plan.pipelines.find((p) => p.name === 'count');
  const transform = pipeline?.transform;
  if (!pipeline || !transform) throw new Error('the planning dataset has no ready count pipeline');
  const computed = pipeline.datums.filter((d) => d.action === 'compute').map((d) => result(d, transform, head));
  if (computed.length !== n) throw new Error(`planned ${computed.length} datums to compute, not ${n}`);
  const committer = new Committer(ds);
  const start = performance.now();
  let at = head;
  for (let i = 0; i < n; i += per) at = (await committer.integrate(at, computed.slice(i, Math.min(n, i + per)), [], [])).head;
  return { dir, results: n, seconds: (performance.now() - start) / 1000 };
}

/** One datum's result as the native executor hands it in: `n` (the input's byte count) kept in git. */
function result(d: DatumPlan, transform: ComputedResult['transform'], head: string): ComputedResult {
  const content = Buffer.from(`${d.datum!.inputs[0]!.path.length}\n`);
  const out = `${d.outputDir}/n`;
  return {
    plan: d,
    transform,
    commit: head,
    outputs: [{ mode: '100644', type: 'blob', oid: gitBlobOid(content), size: content.length, path: out, content }],
    record: { cmd: 'sh -c \'wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n"\'', chain: [], exit: 0, extra_inputs: [], inputs: [d.datum!.inputs[0]!.path], outputs: [d.outputDir], pwd: '.' },
    resources: { wall: 0.01 },
  };
}
