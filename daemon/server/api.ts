/**
 * What the HTTP server may ask of the daemon: the narrow interface its routes are written against (the
 * daemon implements it; the server never sees the daemon itself, its queue or its followers).
 */
import type { DatasetOverview } from '../core/overview.js';
import type { Explanation } from '../core/provenance.js';
import type { DatumJobState, JobSummary } from '../queue/datum-queue.js';
import type { RunInfo } from '../schedule/follower.js';

/** Which served branch a request is about: by dataset name, clone directory and/or branch. */
export interface DatasetSelector {
  readonly dataset?: string;
  readonly dir?: string;
  readonly branch?: string;
}

/** The selector a request's query (or JSON body) names: `dataset`, `dir`, `branch`. */
export const selectorOf = (q: Record<string, unknown>): DatasetSelector => ({
  dataset: q['dataset'] as string | undefined,
  dir: q['dir'] as string | undefined,
  branch: q['branch'] as string | undefined,
});

/** An error with the HTTP status it should be answered with. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface DaemonStatus {
  readonly daemon: { pid: number; url: string; redis: string; uptime_seconds: number };
  readonly jobs: Record<string, number>;
  readonly throughput: { computed_last_minute: number; computed_per_minute_last_10_minutes: number };
  readonly datasets: readonly Record<string, unknown>[];
  /** Datums running away from the workers (on Slurm): which datum, in which task. */
  readonly running_elsewhere: readonly { dataset: string; datum: string; on: string }[];
}

export interface DaemonApi {
  /** Whether the daemon can work (its Redis answers). */
  health(): Promise<{ ok: boolean; redis: 'up' | 'down'; error?: string }>;
  /** Prometheus exposition of the daemon's metrics. */
  metrics(): Promise<{ contentType: string; text: string }>;
  status(): Promise<DaemonStatus>;
  /** Asks for a schedule of a served branch; the run that will serve it. Throws HttpError 404 for an unknown one. */
  schedule(target: DatasetSelector, reason: string): RunInfo;
  run(id: number): RunInfo | undefined;
  jobs(state?: DatumJobState): Promise<JobSummary[]>;
  /** The last log of a datum (`pipeline/datum`). */
  log(target: DatasetSelector, datum: string): Promise<{ datum: string; source: string; log: string }>;
  /** Failed datums (one, or all) start over, and a schedule is asked for. */
  retry(target: DatasetSelector, which: { datum?: string; failed?: boolean }): Promise<{ retried: string[]; run: RunInfo }>;
  /** What the dashboard draws, for each served branch the selector matches (all: an empty selector). */
  overview(target: DatasetSelector): Promise<DatasetOverview[]>;
  /** How a file of a served branch was made (results/explain.ts), down to raw data. */
  explain(target: DatasetSelector, path: string): Promise<Explanation>;
  /** The output files of a served branch's pipelines at its head (at most `limit`). */
  outputs(target: DatasetSelector, limit: number): Promise<string[]>;
  /** Calls `listener` when something the dashboard shows may have changed (a job or a run moved); returns the unsubscribe. */
  subscribe(listener: (change: { dataset?: string; what: string }) => void): () => void;
}
