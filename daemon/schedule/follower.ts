/**
 * A follower keeps one branch of one dataset computed: every request (an event, `minipach schedule`, the
 * daemon starting) asks for a schedule of the branch as it is *then*. Requests coalesce: while a schedule
 * runs, any number of new requests share one next run, which plans the newest head, so a storm of events
 * gives few plans and the last state is always scheduled.
 */
import type { Dataset } from '../adapters/dataset.js';
import type { ComputeRunner } from '../exec/runner.js';
import type { ScheduleReport } from './report.js';
import { schedule } from './scheduler.js';

export type RunState = 'queued' | 'running' | 'done' | 'failed';

export interface RunInfo {
  readonly id: number;
  readonly dataset: string;
  readonly branch: string;
  state: RunState;
  /** Why it was asked for (the first request it serves). */
  readonly reason: string;
  readonly requestedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Its compute jobs are on the queue (or it has none): `schedule --no-wait` may return. */
  enqueued: boolean;
  progress: { done: number; total: number };
  report?: ScheduleReport;
  error?: string;
}

export interface FollowerHooks {
  /** A new run id, unique in the daemon. */
  readonly nextRunId: () => number;
  readonly onRunStart?: (run: RunInfo) => void;
  readonly onRunEnd?: (run: RunInfo) => void;
  readonly log?: (msg: string) => void;
}

/** After a run failed as a whole (Redis or the remote away), it is asked for again after this long. */
const RETRY_AFTER_MS = 5000;

export class Follower {
  private running?: RunInfo;
  private next?: RunInfo;
  private stopping = false;
  private retryTimer?: NodeJS.Timeout;
  private idleWaiters: (() => void)[] = [];
  private servedWaiters: { id: number; resolve: () => void }[] = [];
  /** The last finished runs, newest last. */
  readonly history: RunInfo[] = [];

  constructor(
    readonly name: string,
    readonly ds: Dataset,
    private readonly runner: ComputeRunner & { onEnqueued?: () => void },
    private readonly hooks: FollowerHooks,
  ) {}

  /** Asks for a schedule; returns the run that will serve it (the queued one, if there is one). */
  request(reason: string): RunInfo {
    if (this.stopping) throw new Error(`the daemon is stopping; ${this.name} ${this.ds.branch} is not scheduled`);
    if (!this.next) {
      this.next = {
        id: this.hooks.nextRunId(),
        dataset: this.name,
        branch: this.ds.branch,
        state: 'queued',
        reason,
        requestedAt: new Date().toISOString(),
        enqueued: false,
        progress: { done: 0, total: 0 },
      };
    }
    const run = this.next;
    void this.drain();
    return run;
  }

  get current(): RunInfo | undefined {
    return this.running ?? this.next;
  }

  find(id: number): RunInfo | undefined {
    return [this.running, this.next, ...this.history].find((r) => r?.id === id);
  }

  /**
   * Resolves once `run`, or a later run (the retry of a failed one), has finished successfully: the
   * request it stood for has then been served, and an event that asked for it can be forgotten.
   */
  whenServed(run: RunInfo): Promise<void> {
    if (run.state === 'done' || this.history.some((r) => r.id >= run.id && r.state === 'done')) return Promise.resolve();
    return new Promise((resolve) => this.servedWaiters.push({ id: run.id, resolve }));
  }

  /** Resolves when no run is queued or running. */
  idle(): Promise<void> {
    if (!this.running && !this.next) return Promise.resolve();
    return new Promise((res) => this.idleWaiters.push(res));
  }

  /** No new runs; the current one ends when its runner is aborted (see server/daemon.ts). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.next = undefined;
    clearTimeout(this.retryTimer);
    await this.idle();
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    while (this.next) {
      const run = (this.running = this.next);
      this.next = undefined;
      run.state = 'running';
      run.startedAt = new Date().toISOString();
      this.hooks.onRunStart?.(run);
      this.runner.onEnqueued = () => (run.enqueued = true);
      try {
        run.report = await schedule(this.ds, {
          runner: this.runner,
          onProgress: ({ done, total }) => (run.progress = { done, total }),
        });
        run.state = 'done';
      } catch (e) {
        run.state = 'failed';
        run.error = (e as Error).message;
        this.hooks.log?.(`${this.name} ${this.ds.branch}: schedule failed: ${run.error}`);
        // Whatever asked for this run must still be served: try again shortly.
        if (!this.stopping) this.retryTimer = setTimeout(() => this.stopping || this.request(`retry after: ${run.error}`), RETRY_AFTER_MS);
      }
      run.enqueued = true;
      run.finishedAt = new Date().toISOString();
      this.running = undefined;
      this.history.push(run);
      if (this.history.length > 50) this.history.shift();
      this.hooks.onRunEnd?.(run);
      if (run.state === 'done') {
        this.servedWaiters = this.servedWaiters.filter((w) => (w.id <= run.id ? (w.resolve(), false) : true));
      }
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
