/**
 * What work costs: forecasts for what a plan would compute, from the recorded history of the same pipeline,
 * and the cost existing results took to produce. Pure functions of a plan and the result index.
 *
 * A forecast uses the median per datum of the pipeline's computed results with the current transform key;
 * after a transform change there are none yet, so the results of the previous transform (the most recent
 * other key) stand in, marked as such; a pipeline never computed has "no history". CPU-hours are measured
 * CPU time (not reserved cores), and a price is CPU-hours times a configured cost per CPU-hour.
 */
import type { Plan } from './plan.js';
import type { ResultIndex, ResultRecord } from './result-index.js';
import { datumLabel } from './datum-label.js';

export type ForecastBasis = 'history' | 'previous transform' | 'no history';

export interface PipelineForecast {
  readonly pipeline: string;
  /** Datums the plan computes now. */
  readonly compute: number;
  /** Datums waiting for upstream results; they will be computed once those land (their number may change). */
  readonly waiting: number;
  readonly basis: ForecastBasis;
  /** How many recorded results the medians come from. */
  readonly samples: number;
  readonly medianWall?: number;
  readonly medianCpu?: number;
  /** Seconds of job time for all its datums, one after another. */
  readonly wall?: number;
  readonly cpuHours?: number;
  readonly price?: number;
}

export interface Forecast {
  readonly pipelines: readonly PipelineForecast[];
  readonly wall: number;
  readonly cpuHours: number;
  readonly price?: number;
  /** Pipelines with work but no history: the totals leave them out. */
  readonly unknown: readonly string[];
  /**
   * Work the forecast cannot count, each said in a line: datums blocked behind a failure (they run only
   * once it is fixed), and datums that will appear once upstream work lands but cannot be named yet.
   */
  readonly leftOut: readonly string[];
}

export function median(xs: readonly number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const hours = (cpuSeconds: number) => cpuSeconds / 3600;

/** The pipeline's computed results to forecast from, and on what basis. */
function history(index: ResultIndex, pipeline: string, transformKey: string | undefined): { basis: ForecastBasis; records: ResultRecord[] } {
  const computed = index.all.filter((r) => r.kind === 'computed' && r.pipeline === pipeline && r.resources);
  const same = computed.filter((r) => r.transformKey === transformKey);
  if (same.length) return { basis: 'history', records: same };
  const previousKey = computed.at(-1)?.transformKey;
  const previous = computed.filter((r) => r.transformKey === previousKey);
  return previous.length ? { basis: 'previous transform', records: previous } : { basis: 'no history', records: [] };
}

export function forecastPlan(plan: Plan, index: ResultIndex, cpuHourCost?: number): Forecast {
  const pipelines: PipelineForecast[] = [];
  const leftOut: string[] = [];
  for (const p of plan.pipelines) {
    const failedUpstream = p.datums.filter((d) => d.action === 'blocked' && d.waitsOn?.failed);
    if (failedUpstream.length) leftOut.push(`${p.name}: ${failedUpstream.length} datum${failedUpstream.length === 1 ? '' : 's'} blocked behind a failure (${failedUpstream[0]!.reason})`);
    for (const u of p.unforeseen ?? []) leftOut.push(`${p.name}: more datums may appear once upstream ${u} is settled, and cannot be counted yet`);
    const compute = p.datums.filter((d) => d.action === 'compute').length;
    const waiting = p.datums.filter((d) => d.action === 'blocked' && d.waitsOn && !d.waitsOn.failed).length;
    if (!compute && !waiting) continue;
    const { basis, records } = history(index, p.name, p.transform?.key);
    const medianWall = median(records.map((r) => r.resources!.wall));
    const medianCpu = median(records.flatMap((r) => (r.resources!.cpu !== undefined ? [r.resources!.cpu] : [])));
    const n = compute + waiting;
    const cpuHours = medianCpu !== undefined ? hours(medianCpu * n) : undefined;
    pipelines.push({
      pipeline: p.name,
      compute,
      waiting,
      basis,
      samples: records.length,
      medianWall,
      medianCpu,
      wall: medianWall !== undefined ? medianWall * n : undefined,
      cpuHours,
      price: cpuHours !== undefined && cpuHourCost !== undefined ? cpuHours * cpuHourCost : undefined,
    });
  }
  const sum = (f: (p: PipelineForecast) => number | undefined) => pipelines.reduce((s, p) => s + (f(p) ?? 0), 0);
  return {
    pipelines,
    wall: sum((p) => p.wall),
    cpuHours: sum((p) => p.cpuHours),
    price: cpuHourCost !== undefined ? sum((p) => p.price) : undefined,
    unknown: pipelines.filter((p) => p.basis === 'no history').map((p) => p.pipeline),
    leftOut,
  };
}

export interface DatumCost {
  readonly pipeline: string;
  readonly datum: string;
  readonly key: string;
  readonly kind: 'computed' | 'linked' | 'unknown';
  /** For linked results: the datum whose computation they reuse (and whose cost it is). */
  readonly reuses?: string;
  readonly wall: number;
  readonly cpu: number;
  readonly maxRssKiB?: number;
}

export interface CostReport {
  readonly datums: readonly DatumCost[];
  readonly computed: number;
  readonly linked: number;
  readonly wall: number;
  readonly cpuHours: number;
  readonly price?: number;
}

/**
 * What producing the current results of the given datums cost: each computed result its recorded
 * resources, each linked one nothing (it reused a computation, named in `reuses`).
 */
export function attributeCost(datums: readonly { pipeline: string; name: string; key: string }[], index: ResultIndex, cpuHourCost?: number): CostReport {
  const own = new Map<string, ResultRecord>();
  for (const r of index.all) own.set(`${r.pipeline}\0${r.datum}\0${r.key}`, r);
  const rows: DatumCost[] = datums.map((d) => {
    const r = own.get(`${d.pipeline}\0${d.name}\0${d.key}`) ?? index.byKey.get(d.key);
    if (!r) return { pipeline: d.pipeline, datum: d.name, key: d.key, kind: 'unknown', wall: 0, cpu: 0 };
    if (r.kind === 'linked' || r.pipeline !== d.pipeline || r.datum !== d.name) {
      const src = r.kind === 'linked' ? r.source! : { pipeline: r.pipeline, datum: r.datum };
      return { pipeline: d.pipeline, datum: d.name, key: d.key, kind: 'linked', reuses: `${datumLabel(src.pipeline, src.datum)}`, wall: 0, cpu: 0 };
    }
    return { pipeline: d.pipeline, datum: d.name, key: d.key, kind: 'computed', wall: r.resources?.wall ?? 0, cpu: r.resources?.cpu ?? 0, maxRssKiB: r.resources?.maxRssKiB };
  });
  const cpuHours = hours(rows.reduce((s, r) => s + r.cpu, 0));
  return {
    datums: rows,
    computed: rows.filter((r) => r.kind === 'computed').length,
    linked: rows.filter((r) => r.kind === 'linked').length,
    wall: rows.reduce((s, r) => s + r.wall, 0),
    cpuHours,
    price: cpuHourCost !== undefined ? cpuHours * cpuHourCost : undefined,
  };
}
