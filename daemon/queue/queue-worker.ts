/**
 * The BullMQ side of a worker: takes datum jobs and hands each to a processor that knows nothing of BullMQ.
 * Crash safety comes from here: a worker killed mid-job stops renewing the job's lock, the job is moved back
 * to waiting, and another try starts from scratch.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisConnection } from '../adapters/redis.js';
import { bullConnection, QUEUE_NAME, type DatumJobData, type DatumJobResult, type FailedTry } from './datum-queue.js';

/** A failure that trying again cannot fix (an invalid spec, an output escaping the dataset): no more tries. */
export class PermanentFailure extends Error {
  override name = 'PermanentFailure';
}

/** One try of a datum job, as the processor sees it. */
export interface WorkerJob {
  readonly data: DatumJobData;
  /** Counts a try as begun (the datum starts running now, here or `ranOn`) and returns its number, from 1. */
  startTry(ranOn?: string): Promise<number>;
  /** Adds text to the job's log (what bull-board shows). */
  log(text: string): Promise<void>;
  /** Records a failed try on the job (what `minipach jobs` and the failure record show). */
  recordFailedTry(t: FailedTry): Promise<void>;
}

export interface QueueWorkerOptions {
  readonly connection: RedisConnection;
  /** @defaultValue "minipach" */
  readonly prefix?: string;
  /** Jobs run at once. @defaultValue 1 */
  readonly concurrency?: number;
  /**
   * Milliseconds a job's lock lasts without renewal: how soon a job of a killed worker runs again.
   * @defaultValue 30000 (BullMQ's default)
   */
  readonly lockDurationMs?: number;
  /** The worker's name, as BullMQ shows it. */
  readonly name: string;
  readonly onError?: (e: Error) => void;
  /** Called once a job's result is recorded as completed in Redis (not merely computed). */
  readonly onCompleted?: (data: DatumJobData) => void;
}

export interface QueueWorker {
  /** Finishes the jobs in hand (or hands them back, past the grace time), then stops. */
  close(): Promise<void>;
}

export async function startQueueWorker(opts: QueueWorkerOptions, processor: (job: WorkerJob) => Promise<DatumJobResult>): Promise<QueueWorker> {
  const lockDuration = opts.lockDurationMs ?? 30_000;
  const worker = new Worker<DatumJobData, DatumJobResult>(
    QUEUE_NAME,
    async (job: Job<DatumJobData, DatumJobResult>) => {
      try {
        return await processor({
          data: job.data,
          // Counted when the datum starts, not when a worker takes the job: a worker batching jobs may be
          // killed holding some it never started (BullMQ's attemptsStarted would count those too).
          startTry: async (ranOn) => {
            const n = Math.max(job.data.tries ?? 0, job.attemptsMade) + 1;
            await job.updateData({ ...job.data, tries: n, ranOn }).catch(() => undefined);
            return n;
          },
          log: async (text) => void (await job.log(text).catch(() => undefined)),
          recordFailedTry: (lastTry) => job.updateData({ ...job.data, lastTry }),
        });
      } catch (e) {
        throw e instanceof PermanentFailure ? new UnrecoverableError(e.message) : e;
      }
    },
    {
      connection: bullConnection(opts.connection),
      prefix: opts.prefix ?? 'minipach',
      concurrency: opts.concurrency ?? 1,
      lockDuration,
      stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
      // A datum whose worker died twice in a row is failed rather than retried forever (a poison datum).
      maxStalledCount: 2,
      name: opts.name,
    },
  );
  worker.on('error', (e) => opts.onError?.(e));
  worker.on('completed', (job) => opts.onCompleted?.(job.data));
  await worker.waitUntilReady();
  return { close: () => worker.close() };
}
