/**
 * What the dashboard and the report show, as one pure function: the plan at a branch head, the result index
 * and (from a daemon) the queue's jobs and recent runs go in; the pipeline DAG with per-state counts, every
 * current datum with its state, resources and provenance, the runs and the cost over time come out. The web
 * page (web/app.js) draws this object, whether it came from the daemon's API or is embedded in a report.
 */
import { datumLabel } from './datum-label.js';
import type { Plan } from './plan.js';
import type { ResultIndex, ResultRecord } from './result-index.js';
import { pfsInputs } from './spec.js';

export const DATUM_STATES = ['done', 'running', 'queued', 'failed', 'blocked'] as const;
export type DatumState = (typeof DATUM_STATES)[number];

/** What started a run, from the reason it was asked for. */
export type Trigger = 'push' | 'webhook' | 'upload' | 'watch' | 'manual' | 'retry' | 'start' | 'poll' | 'other';

export interface DatumRow {
  readonly name: string;
  readonly key: string;
  readonly state: DatumState;
  /** The plan's reason, or why it failed. */
  readonly reason: string;
  readonly outputDir: string;
  readonly tries?: number;
  /** Seconds of the whole job, of the command, CPU seconds; peak RSS in KiB. */
  readonly wall?: number;
  readonly commandWall?: number;
  readonly cpu?: number;
  readonly maxRssKiB?: number;
  readonly exit?: number;
  readonly stderrTail?: string;
  /** Where it runs when not on a worker (a Slurm task). */
  readonly ranOn?: string;
  /** The commit that put its outputs on the branch, and the run commit they come from. */
  readonly commit?: string;
  readonly runCommit?: string;
  /** Replays its run on a plain clone. */
  readonly rerun?: string;
  readonly linkedFrom?: string;
  readonly command?: readonly string[];
  /** Its input files (dataset paths and content keys) as its result recorded them. */
  readonly inputs?: readonly { readonly name: string; readonly files: readonly { readonly path: string; readonly key: string }[] }[];
  /** Labels of the datums whose outputs it read. */
  readonly upstream?: readonly string[];
}

export interface PipelineOverview {
  readonly name: string;
  readonly status: string;
  readonly error?: string;
  /** The input repos it reads (a pipeline's name, or a directory of raw data). */
  readonly inputs: readonly string[];
  readonly counts: Readonly<Record<DatumState, number>>;
  readonly datums: readonly DatumRow[];
}

export interface RunSummary {
  readonly id: number;
  readonly trigger: Trigger;
  readonly reason: string;
  readonly state: string;
  readonly requestedAt: string;
  readonly finishedAt?: string;
  readonly counts?: Readonly<Record<string, number>>;
  readonly error?: string;
}

export interface CostPoint {
  readonly pipeline: string;
  /** `YYYY-MM-DD` (UTC) of the commits that recorded the results. */
  readonly day: string;
  readonly results: number;
  readonly cpuHours: number;
  readonly wallHours: number;
}

export interface DatasetOverview {
  readonly dataset: string;
  readonly branch: string;
  readonly head: string;
  /** Input repos that are not pipelines: raw data. */
  readonly repos: readonly string[];
  readonly pipelines: readonly PipelineOverview[];
  readonly runs: readonly RunSummary[];
  /** Every computation on record (superseded ones too), per pipeline and day: what was spent, and when. */
  readonly cost: readonly CostPoint[];
  readonly cpuHourCost?: number;
}

/** A job of the queue, as far as the overview cares. */
export interface LiveJob {
  readonly key: string;
  readonly state: string;
  readonly attempts: number;
  readonly ranOn?: string;
}

export interface OverviewInput {
  readonly dataset: string;
  readonly branch: string;
  readonly plan: Plan;
  readonly index: ResultIndex;
  /** The dataset's jobs in the queue (a daemon); none: what the plan and the index say (a report). */
  readonly jobs?: readonly LiveJob[];
  readonly runs?: readonly RunSummary[];
  /** Commit -> its time (Unix seconds), for the results on record. */
  readonly commitTimes?: ReadonlyMap<string, number>;
  readonly cpuHourCost?: number;
}

const QUEUED_JOB = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

export function overviewOf(o: OverviewInput): DatasetOverview {
  const jobs = new Map((o.jobs ?? []).map((j) => [j.key, j]));
  // Output directory -> datum label, to find which datum made a result's input (its upstream).
  const producers = new Map<string, string>();
  for (const p of o.plan.pipelines) for (const d of p.datums) if (d.action !== 'remove') producers.set(d.outputDir, datumLabel(d.pipeline, d.name));
  const upstreamOf = (paths: readonly string[]) => {
    const found = new Set<string>();
    for (const path of paths) {
      // The deepest output directory holding the path (a root datum's is the pipeline's own): its ancestors, longest first.
      for (let dir = path; dir; dir = dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '') {
        const label = producers.get(dir);
        if (label) {
          found.add(label);
          break;
        }
      }
    }
    return [...found];
  };
  // The record of each datum's current result (a linked datum's own, not its source's), newest wins.
  const recordOf = new Map<string, ResultRecord>();
  for (const r of o.index.all) recordOf.set(datumLabel(r.pipeline, r.datum), r);
  const pipelineNames = new Set(o.plan.pipelines.map((p) => p.name));
  const repos = new Set<string>();
  const pipelines = o.plan.pipelines.map((p): PipelineOverview => {
    const inputs = p.spec ? [...new Set(pfsInputs(p.spec.input).map((i) => i.repo.split('/')[0]!))] : [];
    for (const r of inputs) if (!pipelineNames.has(r)) repos.add(r);
    const datums = p.datums.filter((d) => d.action !== 'remove').map((d): DatumRow => {
      const base = { name: d.name, key: d.key, outputDir: d.outputDir, reason: d.reason };
      if (d.action === 'skip') {
        const own = recordOf.get(datumLabel(d.pipeline, d.name));
        return { ...base, state: 'done', ...resultFields(own?.key === d.key ? own : o.index.byKey.get(d.key), o.index.byKey.get(d.key), upstreamOf) };
      }
      if (d.action === 'blocked') return { ...base, state: 'blocked' };
      const job = jobs.get(d.key);
      const failure = o.index.failures.get(d.key);
      const failed = failure && { reason: failure.reason, exit: failure.exit, stderrTail: failure.stderrTail, tries: failure.tries };
      if (job?.state === 'active' || job?.state === 'completed') return { ...base, state: 'running', tries: job.attempts, ...(job.ranOn ? { ranOn: job.ranOn } : {}) };
      if (job && QUEUED_JOB.has(job.state)) return { ...base, state: 'queued', tries: job.attempts, ...(failed ? { exit: failed.exit, stderrTail: failed.stderrTail } : {}) };
      // A failed job's attempts are its tries (the failure record counts the schedules it failed in).
      if (failed || job?.state === 'failed') return { ...base, state: 'failed', ...(failed ?? { reason: 'failed' }), tries: job?.attempts ?? failed?.tries };
      return { ...base, state: 'queued' };
    });
    const counts = Object.fromEntries(DATUM_STATES.map((s) => [s, 0])) as Record<DatumState, number>;
    for (const d of datums) counts[d.state]++;
    return { name: p.name, status: p.status, ...(p.error ? { error: p.error.message } : {}), inputs, counts, datums };
  });
  return {
    dataset: o.dataset,
    branch: o.branch,
    head: o.plan.commit,
    repos: [...repos].sort(),
    pipelines,
    runs: o.runs ?? [],
    cost: costOverTime(o.index.all, o.commitTimes ?? new Map()),
    ...(o.cpuHourCost !== undefined ? { cpuHourCost: o.cpuHourCost } : {}),
  };
}

/** A result's provenance; resources and command are those of the computation (`run`: for a linked one, its source's). */
function resultFields(r: ResultRecord | undefined, run: ResultRecord | undefined, upstreamOf: (paths: readonly string[]) => string[]): Partial<DatumRow> {
  if (!r) return {};
  const measured = r.resources ?? run?.resources;
  const transform = r.transform ?? run?.transform;
  const inputs = (r.inputs ?? []).map((i) => ({ name: i.name, files: i.files.map(([rel, key]) => ({ path: rel ? `${i.path}/${rel}` : i.path, key })) }));
  return {
    commit: r.commit,
    runCommit: r.runCommit,
    rerun: `datalad rerun --onto= --branch=rerun-${r.runCommit.slice(0, 8)} ${r.runCommit}`,
    ...(r.source ? { linkedFrom: datumLabel(r.source.pipeline, r.source.datum) } : {}),
    ...(transform ? { command: [...transform.cmd, ...transform.stdin] } : {}),
    ...(measured ? { wall: measured.wall, commandWall: measured.commandWall, cpu: measured.cpu, maxRssKiB: measured.maxRssKiB } : {}),
    inputs,
    upstream: upstreamOf(inputs.flatMap((i) => i.files.map((f) => f.path))),
  };
}

/** Computed results per pipeline and day (linked ones cost nothing: they reuse a computation). */
function costOverTime(records: readonly ResultRecord[], times: ReadonlyMap<string, number>): CostPoint[] {
  const points = new Map<string, { pipeline: string; day: string; results: number; cpu: number; wall: number }>();
  for (const r of records) {
    if (r.kind !== 'computed' || !r.resources) continue;
    const t = times.get(r.commit);
    if (t === undefined) continue;
    const day = new Date(t * 1000).toISOString().slice(0, 10);
    const id = `${r.pipeline}\0${day}`;
    const p = points.get(id) ?? { pipeline: r.pipeline, day, results: 0, cpu: 0, wall: 0 };
    p.results++;
    // Without a CPU measurement, the command's wall time is what it occupied a core for.
    p.cpu += r.resources.cpu ?? r.resources.commandWall ?? r.resources.wall;
    p.wall += r.resources.wall;
    points.set(id, p);
  }
  return [...points.values()]
    .sort((a, b) => (a.day === b.day ? a.pipeline.localeCompare(b.pipeline) : a.day < b.day ? -1 : 1))
    .map((p) => ({ pipeline: p.pipeline, day: p.day, results: p.results, cpuHours: p.cpu / 3600, wallHours: p.wall / 3600 }));
}

/** What started a run, from the reason the daemon recorded (sources/events.ts, the CLI, the API). */
export function triggerOf(reason: string): Trigger {
  if (reason.startsWith('webhook ')) return 'webhook';
  if (reason.startsWith('push ')) return 'push';
  if (reason.startsWith('objects: ')) return 'upload';
  if (reason === 'minipach watch') return 'watch';
  if (reason === 'minipach retry') return 'retry';
  if (reason === 'daemon started') return 'start';
  if (reason === 'poll') return 'poll';
  if (reason.startsWith('minipach ')) return 'manual';
  return 'other';
}
