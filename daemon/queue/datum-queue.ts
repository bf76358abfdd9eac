/**
 * The datum queue on BullMQ. One job per (dataset, datum key): its id is the key, so enqueueing a datum that
 * is already waiting, running, finished or failed adds nothing, and a duplicate event costs a plan, never a
 * computation. A finished job stays in Redis, with its result, until the committer has put that result on
 * the branch; so a daemon that crashes and restarts finds it there instead of computing it again.
 */
import { Job, Queue, QueueEvents, type ConnectionOptions, type JobState } from 'bullmq';
import type { RedisConnection } from '../adapters/redis.js';
import type { LsTreeEntry } from '../adapters/git.js';
import { datumLabel } from '../core/datum-label.js';
import type { Datum } from '../core/datums.js';
import type { DataladRunRecord } from '../core/record.js';
import type { ResourceUsage } from '../core/result-index.js';
import type { ExecutorName } from '../exec/executors.js';

export const QUEUE_NAME = 'datums';

/** What a worker needs to compute one datum, without reading anything but git. */
export interface DatumJobData {
  readonly dataset: string;
  /** Where the worker clones from, fetches the base commit and hands the result back to. */
  readonly origin: string;
  readonly baseCommit: string;
  readonly pipeline: string;
  readonly datumName: string;
  readonly key: string;
  readonly outputDir: string;
  readonly specFile: string;
  readonly specSource: string;
  readonly datum: Datum;
  /** Tries begun so far (a worker counts one when it starts running the datum, not when it takes the job). */
  readonly tries?: number;
  /** Where the last try runs or ran, when not on the worker itself: `Slurm task <job>_<index>`. */
  readonly ranOn?: string;
  /** The S3 special remote of the dataset that holds content (inputs come from it, results go to it); unset: the origin. */
  readonly storage?: string;
  /** How the worker runs the command. @defaultValue "native" */
  readonly executor?: ExecutorName;
  /** Written by the worker when a try fails: what `minipach jobs` and the failure record show. */
  readonly lastTry?: FailedTry;
}

export interface FailedTry {
  readonly reason: string;
  readonly exit?: number;
  readonly stderrTail: string;
  readonly timedOut?: boolean;
  readonly log: string;
}

/** A finished job's return value. The run commit is on `refs/minipach/runs/<key>` of the origin. */
export interface DatumJobResult {
  readonly commit: string;
  readonly outputs: readonly LsTreeEntry[];
  readonly record: DataladRunRecord;
  readonly resources: ResourceUsage;
  readonly log: string;
  readonly worker: string;
}

/** ioredis options as BullMQ takes them (the same object; BullMQ's type also admits a client). */
export const bullConnection = (c: RedisConnection): ConnectionOptions => c as ConnectionOptions;

/** BullMQ ids may not contain `:`; a dataset name never does (server/config.ts). */
export const jobId = (dataset: string, key: string) => `${dataset}.${key}`;

export interface QueueOptions {
  readonly connection: RedisConnection;
  /** @defaultValue "minipach" */
  readonly prefix?: string;
}

/** The states a datum job can be in, as `minipach jobs --state` names them. */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children'] as const;
export type DatumJobState = (typeof JOB_STATES)[number];

export const isJobState = (s: string): s is DatumJobState => (JOB_STATES as readonly string[]).includes(s);

export interface JobSummary {
  readonly id: string;
  readonly state: JobState | 'unknown';
  readonly dataset: string;
  readonly datum: string;
  readonly key: string;
  readonly attempts: number;
  readonly reason?: string;
  readonly finishedAt?: string;
  /** Where its last try ran, when not on a worker itself (a Slurm array task). */
  readonly ranOn?: string;
}

/** A datum whose job is in the queue: which datum, of which dataset. */
export interface DatumRef {
  readonly dataset: string;
  readonly pipeline: string;
  readonly name: string;
}

export class DatumQueue {
  /** The BullMQ queue; only queue/ touches it. */
  readonly queue: Queue<DatumJobData, DatumJobResult>;
  readonly events: QueueEvents;

  constructor(opts: QueueOptions) {
    const prefix = opts.prefix ?? 'minipach';
    this.queue = new Queue<DatumJobData, DatumJobResult>(QUEUE_NAME, { connection: bullConnection(opts.connection), prefix });
    this.events = new QueueEvents(QUEUE_NAME, { connection: bullConnection(opts.connection), prefix });
    // ioredis reconnects by itself; without a listener an outage would also print a stack trace per try.
    this.queue.on('error', () => undefined);
    this.events.on('error', () => undefined);
  }

  async enqueue(data: DatumJobData, tries: number): Promise<string> {
    const id = jobId(data.dataset, data.key);
    await this.queue.add('compute', data, {
      jobId: id,
      attempts: Math.max(1, tries),
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: false,
      removeOnFail: false,
    });
    return id;
  }

  async get(id: string): Promise<Job<DatumJobData, DatumJobResult> | undefined> {
    return Job.fromId<DatumJobData, DatumJobResult>(this.queue, id);
  }

  /** Jobs by state (every state listed in JOB_STATES). */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts(...JOB_STATES);
  }

  /**
   * Failed jobs of a dataset (of one datum, when given, or those whose last try `matches`) start over with
   * fresh tries. Returns their data.
   */
  async retryFailed(dataset: string, which: { datum?: { pipeline: string; name: string }; matches?: (t: FailedTry | undefined) => boolean } = {}): Promise<DatumJobData[]> {
    const failed = (await this.queue.getJobs(['failed'], 0, -1)).filter(
      (j) => j && j.data.dataset === dataset && (!which.datum || (j.data.pipeline === which.datum.pipeline && j.data.datumName === which.datum.name)) && (!which.matches || which.matches(j.data.lastTry)),
    );
    for (const j of failed) {
      // Its tries start over, as BullMQ's attempts do.
      await j.updateData({ ...j.data, tries: 0 }).catch(() => undefined);
      await j.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }).catch(() => undefined);
    }
    return failed.map((j) => j.data);
  }

  /** The last failed try of a datum whose job is still in the queue (not settled yet), if a worker wrote one. */
  async lastTry(d: DatumRef): Promise<{ jobId: string; lastTry: FailedTry } | undefined> {
    const jobs = await this.queue.getJobs(['active', 'waiting', 'delayed', 'failed'], 0, -1);
    const job = jobs.find((j) => j && j.data.dataset === d.dataset && j.data.pipeline === d.pipeline && j.data.datumName === d.name && j.data.lastTry);
    return job ? { jobId: job.id!, lastTry: job.data.lastTry! } : undefined;
  }

  async summaries(states: readonly DatumJobState[] = JOB_STATES): Promise<JobSummary[]> {
    // One listing per state, so each job's state is known without a round trip of its own (getState).
    const byState = await Promise.all(states.map(async (state) => ((await this.queue.getJobs([state], 0, -1)) as (Job<DatumJobData, DatumJobResult> | undefined)[]).filter((j) => j !== undefined).map((j) => ({ j, state }))));
    return byState.flat().map(({ j, state }) => ({
      id: j.id!,
      state,
      dataset: j.data.dataset,
      datum: datumLabel(j.data.pipeline, j.data.datumName),
      key: j.data.key,
      attempts: j.data.tries ?? j.attemptsMade,
      reason: j.failedReason || undefined,
      finishedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : undefined,
      ranOn: j.data.ranOn,
    }));
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
  }
}

