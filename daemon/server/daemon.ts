/**
 * `minipach up`: the daemon. It owns Redis (the configured one, or a private redis-server), the datum
 * queue, one follower per (dataset, branch) that schedules it on request, the committer (inside each
 * follower's schedule: one writer per branch), optionally in-process workers, the event processor, and the
 * HTTP server, to which it shows only the DaemonApi. It registers itself in each dataset's state dir
 * (`daemon.json`) so that the CLI run in that dataset sends `schedule` and the inspection commands here.
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { openDataset, type Dataset } from '../adapters/dataset.js';
import { loadCredentialsFile, storageOf } from '../adapters/storage.js';
import { BOOKKEEPING_DIR } from '../core/identity.js';
import { triggerOf, type DatasetOverview, type RunSummary } from '../core/overview.js';
import type { Explanation } from '../core/provenance.js';
import { SPEC_FILE } from '../core/spec.js';
import { normalizeDatasetPath } from '../core/tree.js';
import { PathEscapeError } from '../core/errors.js';
import { explain } from '../results/explain.js';
import { OverviewSource } from '../schedule/overview.js';
import { checkRedis, redisOptions, startEmbeddedRedis, type EmbeddedRedis } from '../adapters/redis.js';
import { datumLabel, parseDatumLabel } from '../core/datum-label.js';
import { readDatumLog } from '../exec/logs.js';
import { startWorker, type RunningWorker } from '../exec/worker.js';
import { queueDashboard } from '../queue/dashboard.js';
import { DatumQueue, type DatumJobState } from '../queue/datum-queue.js';
import { QueueRunner } from '../queue/queue-runner.js';
import { Sightings } from '../queue/sightings.js';
import { remoteLocation } from '../results/branch.js';
import { ResultStore } from '../results/index-store.js';
import { Follower, type RunInfo } from '../schedule/follower.js';
import { EventProcessor } from '../sources/events.js';
import { EventIntake, type EventTarget } from '../sources/intake.js';
import { HttpError, type DaemonApi, type DaemonStatus, type DatasetSelector } from './api.js';
import { checkExposure, type DaemonConfig } from './config.js';
import { createServer } from './http.js';
import { Metrics } from './metrics.js';
import { registerDaemon, unregisterDaemon } from './registration.js';

export class Daemon implements DaemonApi {
  readonly followers: Follower[] = [];
  events?: EventProcessor;
  private readonly metricsRegistry = new Metrics();
  private readonly startedAt = Date.now();
  private readonly abort = new AbortController();
  private readonly workers: RunningWorker[] = [];
  private readonly sightings: Sightings;
  private server?: Server;
  private pollTimer?: NodeJS.Timeout;
  private runIds = 0;
  /** Finish times of computed datums, for throughput. */
  private readonly completions: number[] = [];
  private readonly listeners = new Set<(change: { dataset?: string; what: string }) => void>();
  /** Overviews being built or just built, per dataset and branch: a page and its live updates ask often. */
  private readonly overviews = new Map<string, { at: number; value: Promise<DatasetOverview> }>();
  /** Per branch served: the part of its overview read from git, kept while the plan's inputs hold. */
  private readonly overviewSources = new Map<Follower, OverviewSource>();
  url = '';

  private constructor(
    readonly config: DaemonConfig,
    private readonly queue: DatumQueue,
    readonly redisUrl: string,
    private readonly embedded: EmbeddedRedis | undefined,
    private readonly logger: Logger,
  ) {
    this.sightings = new Sightings(redisOptions(redisUrl), config.queuePrefix);
    this.metricsRegistry.jobCounts = () => queue.counts();
  }

  static async start(config: DaemonConfig, log: Logger = pino({ name: 'minipach' }, pino.destination(2))): Promise<Daemon> {
    checkExposure(config);
    const served = await openServed(config);
    const stateDir = config.stateDir ?? path.join(served[0]!.ds.stateDir, 'daemon');
    await mkdir(stateDir, { recursive: true });
    let embedded: EmbeddedRedis | undefined;
    let redisUrl = config.redisUrl;
    if (redisUrl) await checkRedis(redisUrl);
    else {
      embedded = await startEmbeddedRedis(stateDir);
      redisUrl = embedded.url;
    }
    const queue = new DatumQueue({ connection: redisOptions(redisUrl), prefix: config.queuePrefix });
    const d = new Daemon(config, queue, redisUrl, embedded, log);
    try {
      await d.startParts(served, stateDir);
      log.info({ url: d.url, redis: embedded ? `embedded (${redisUrl})` : redisUrl }, 'minipach daemon ready');
      return d;
    } catch (e) {
      await d.stop();
      throw e;
    }
  }

  private async startParts(served: readonly { name: string; ds: Dataset }[], stateDir: string): Promise<void> {
    const targets: EventTarget[] = [];
    for (const { name, ds } of served) {
      // Workers clone from, and hand results in to, the remote when there is one, else the daemon's clone.
      const origin = (await remoteLocation(ds))?.url ?? ds.dir;
      const dc = this.config.datasets.find((c) => c.name === name)!;
      const runner = new QueueRunner(this.queue, ds, { dataset: name, origin, executor: dc.executor, pipelineExecutors: dc.pipelineExecutors }, this.abort.signal);
      runner.onWarning = (m) => this.logger.warn(`${name}: ${m}`);
      this.followers.push(
        new Follower(name, ds, runner, {
          nextRunId: () => ++this.runIds,
          log: (m) => this.logger.warn(m),
          onRunStart: () => this.changed(name, 'run started'),
          onRunEnd: (run) => {
            this.runEnded(run);
            this.changed(name, 'run ended');
          },
        }),
      );
      targets.push({ dataset: name, dir: ds.dir, gitDir: ds.gitDir, origin, repository: dc.repository, minio: dc.minio });
    }
    for (let i = 0; i < this.config.workers; i++) {
      const w = await startWorker({
        connection: redisOptions(this.redisUrl),
        prefix: this.config.queuePrefix,
        concurrency: this.config.concurrency,
        batchSize: this.config.batchSize,
        batchWaitMs: this.config.batchWaitMs,
        stateDir: path.join(stateDir, 'workers'),
        log: (m) => this.logger.info(m),
        // Only when a dataset asks for Slurm: the dispatcher needs sbatch and squeue on this machine.
        slurm: this.config.datasets.some((d) => d.executor === 'slurm' || Object.values(d.pipelineExecutors).includes('slurm')) ? this.config.slurm : undefined,
      });
      this.workers.push(w);
    }
    for (const what of ['active', 'completed', 'failed', 'waiting'] as const) this.queue.events.on(what, () => this.changed(undefined, `job ${what}`));
    const spoolDir = path.join(stateDir, 'spool');
    const intake = new EventIntake({ targets, spoolDir, sightings: this.sightings, secrets: this.config.secrets, warn: (msg, fields) => this.logger.warn(fields, msg) });
    this.server = await createServer({ api: this, token: this.config.http.token, intake, dashboard: queueDashboard(this.queue, '/queues') }, this.config.http.host, this.config.http.port);
    const addr = this.server.address();
    this.url = `http://${this.config.http.host}:${typeof addr === 'object' && addr ? addr.port : this.config.http.port}`;
    for (const f of this.followers) await registerDaemon(f.ds, { pid: process.pid, url: this.url, redisUrl: this.redisUrl, queuePrefix: this.config.queuePrefix, dataset: f.name, token: this.config.http.token });
    // Catch up: whatever happened while no daemon ran (and jobs finished meanwhile) is scheduled now,
    // and events spooled meanwhile (pushes while the daemon was down) are replayed.
    for (const f of this.followers) f.request('daemon started');
    this.events = new EventProcessor(this.followers, this.queue, this.logger, this.config.minio);
    await this.events.start(spoolDir);
    if (this.config.pollSeconds > 0) this.poll(this.config.pollSeconds);
  }

  // ---- DaemonApi --------------------------------------------------------------------------------

  async health(): Promise<{ ok: boolean; redis: 'up' | 'down'; error?: string }> {
    try {
      await checkRedis(this.redisUrl, 1000);
      return { ok: true, redis: 'up' };
    } catch (e) {
      return { ok: false, redis: 'down', error: (e as Error).message };
    }
  }

  async metrics(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.metricsRegistry.registry.contentType, text: await this.metricsRegistry.registry.metrics() };
  }

  async status(): Promise<DaemonStatus> {
    const now = Date.now();
    return {
      daemon: { pid: process.pid, url: this.url, redis: this.redisUrl, uptime_seconds: Math.round((now - this.startedAt) / 1000) },
      jobs: await this.queue.counts(),
      throughput: {
        computed_last_minute: this.completions.filter((t) => t > now - 60_000).length,
        computed_per_minute_last_10_minutes: this.completions.filter((t) => t > now - 600_000).length / 10,
      },
      datasets: this.followers.map(followerStatus),
      running_elsewhere: (await this.queue.summaries(['active'])).flatMap((j) => (j.ranOn ? [{ dataset: j.dataset, datum: j.datum, on: j.ranOn }] : [])),
    };
  }

  schedule(target: DatasetSelector, reason: string): RunInfo {
    return this.follower(target).request(reason);
  }

  run(id: number): RunInfo | undefined {
    for (const f of this.followers) {
      const r = f.find(id);
      if (r) return r;
    }
    return undefined;
  }

  jobs(state?: DatumJobState) {
    return this.queue.summaries(state ? [state] : undefined);
  }

  async log(target: DatasetSelector, datum: string): Promise<{ datum: string; source: string; log: string }> {
    const f = this.follower(target);
    const { pipeline, name } = parseDatumLabel(datum);
    const label = datumLabel(pipeline, name);
    const settled = await readDatumLog(f.ds.stateDir, pipeline, name);
    if (settled) return { datum: label, source: settled.file, log: settled.log };
    // Not settled yet: the last failed try's log, if a worker wrote one.
    const pending = await this.queue.lastTry({ dataset: f.name, pipeline, name });
    if (!pending) throw new HttpError(404, `no log for ${label} yet (it has not run here)`);
    return { datum: label, source: `job ${pending.jobId}`, log: pending.lastTry.log };
  }

  async retry(target: DatasetSelector, which: { datum?: string; failed?: boolean }): Promise<{ retried: string[]; run: RunInfo }> {
    const f = this.follower(target);
    const datum = which.datum ? parseDatumLabel(which.datum) : undefined;
    const retried = await this.queue.retryFailed(f.name, { datum });
    await new ResultStore(f.ds).clearFailures(retried.map((j) => j.key));
    return { retried: retried.map((j) => datumLabel(j.pipeline, j.datumName)), run: f.request('minipach retry') };
  }

  async overview(target: DatasetSelector): Promise<DatasetOverview[]> {
    const followers = this.followers.filter((x) => (target.dataset === undefined || x.name === target.dataset) && (target.branch === undefined || x.ds.branch === target.branch));
    if (!followers.length) this.follower(target);
    return Promise.all(
      followers.map((f) => {
        const id = `${f.name}\0${f.ds.branch}`;
        const cached = this.overviews.get(id);
        if (cached && Date.now() - cached.at < OVERVIEW_FRESH_MS) return cached.value;
        const value = (async () => {
          const jobs = (await this.queue.summaries()).filter((j) => j.dataset === f.name).map((j) => ({ key: j.key, state: j.state, attempts: j.attempts, ranOn: j.ranOn }));
          const runs = [...f.history.slice(-20), ...[f.current].filter((r) => r !== undefined)].reverse().map(runSummary);
          let source = this.overviewSources.get(f);
          if (!source) this.overviewSources.set(f, (source = new OverviewSource(f.ds, f.name)));
          return source.overview({ jobs, runs });
        })();
        this.overviews.set(id, { at: Date.now(), value });
        value.catch(() => this.overviews.delete(id));
        return value;
      }),
    );
  }

  async explain(target: DatasetSelector, file: string): Promise<Explanation> {
    const f = this.follower(target);
    return explain(f.ds, datasetFilePath(file), f.ds.ref);
  }

  async outputs(target: DatasetSelector, limit: number): Promise<string[]> {
    const f = this.follower(target);
    // One listing of the head (no plan): files of the top-level directories that hold a spec.yml.
    const paths = (await f.ds.repo.lsTree(f.ds.ref, undefined, { sizes: false })).map((e) => e.path);
    const pipelines = new Set(paths.filter((p) => p.split('/').length === 2 && p.endsWith(`/${SPEC_FILE}`)).map((p) => p.split('/')[0]));
    return paths.filter((p) => pipelines.has(p.split('/')[0]) && !p.endsWith(`/${SPEC_FILE}`) && !p.split('/').includes(BOOKKEEPING_DIR)).slice(0, limit);
  }

  subscribe(listener: (change: { dataset?: string; what: string }) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- the rest ---------------------------------------------------------------------------------

  /** Something the dashboard shows may have changed: cached overviews are stale, subscribers hear of it. */
  private changed(dataset: string | undefined, what: string): void {
    this.overviews.clear();
    for (const l of this.listeners) l({ dataset, what });
  }

  private follower(sel: DatasetSelector): Follower {
    const f = this.followers.find(
      (x) => (sel.dataset === undefined || x.name === sel.dataset) && (sel.dir === undefined || x.ds.dir === sel.dir) && (sel.branch === undefined || x.ds.branch === sel.branch),
    );
    if (f) return f;
    const known = this.followers.map((x) => `${x.name} (${x.ds.dir}, ${x.ds.branch})`).join('; ');
    throw new HttpError(404, `this daemon does not serve ${sel.dataset ?? sel.dir ?? 'that dataset'}${sel.branch ? ` branch ${sel.branch}` : ''}; it serves: ${known}`);
  }

  private runEnded(run: RunInfo): void {
    const now = Date.now();
    this.metricsRegistry.recordRun(run);
    for (let i = 0; i < (run.report?.counts.computed ?? 0); i++) this.completions.push(now);
    while (this.completions.length && this.completions[0]! < now - 3_600_000) this.completions.shift();
  }

  private poll(seconds: number): void {
    this.pollTimer = setInterval(() => {
      for (const f of this.followers) if (f.ds.remote && !f.current) f.request('poll');
    }, seconds * 1000);
  }

  /**
   * Stops in order: no new requests, in-process workers finish their jobs (or hand them back after
   * `graceMs`), waiting schedules stop waiting (their jobs stay queued), an integration in progress
   * completes, then the queue and a private Redis close.
   */
  async stop(graceMs = 30_000): Promise<void> {
    clearInterval(this.pollTimer);
    this.events?.stop();
    // Open dashboards' event streams end now: the server's close waits for every connection to end.
    for (const l of this.listeners) l({ what: 'daemon stopping' });
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    this.server?.closeAllConnections();
    const stopping = this.followers.map((f) => f.stop());
    await Promise.all(this.workers.map((w) => withTimeout(w.close(), graceMs)));
    this.abort.abort();
    await Promise.all(stopping);
    for (const f of this.followers) await unregisterDaemon(f.ds);
    await this.queue.close();
    this.sightings.close();
    await this.embedded?.stop();
  }
}

/** Datasets first: a wrong path or branch is reported before anything is started. */
async function openServed(config: DaemonConfig): Promise<{ name: string; ds: Dataset }[]> {
  const served: { name: string; ds: Dataset }[] = [];
  const credentials = config.datasets.find((d) => d.storage?.credentialsFile)?.storage?.credentialsFile;
  if (credentials) await loadCredentialsFile(credentials);
  for (const dc of config.datasets) {
    const open = (branch?: string) => openDataset(dc.path, branch, dc.remote, { storage: dc.storage?.remote });
    const first = await open(dc.branches?.[0]);
    // The storage must be set up in the clone: a wrong name, or (the first time, when it is enabled here) a
    // bucket that does not answer, is reported now. Once enabled, a bucket that is away only makes work wait.
    await storageOf(first);
    for (const branch of dc.branches ?? [first.branch]) served.push({ name: dc.name, ds: branch === first.branch ? first : await open(branch) });
  }
  return served;
}

/** How long an overview stays fresh without a change heard of (jobs and runs tell; this covers the rest). */
const OVERVIEW_FRESH_MS = 2000;

function runSummary(r: RunInfo): RunSummary {
  return { id: r.id, trigger: triggerOf(r.reason), reason: r.reason, state: r.state, requestedAt: r.requestedAt, ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}), ...(r.report ? { counts: r.report.counts } : {}), ...(r.error ? { error: r.error } : {}) };
}

/** A dataset path from a request: relative, without `..`. */
function datasetFilePath(p: string): string {
  const n = normalizeDatasetPath(p);
  if (!n) throw new PathEscapeError(p, 'explain');
  return n;
}

function followerStatus(f: Follower): Record<string, unknown> {
  const last = [...f.history].reverse().find((r) => r.report);
  return {
    name: f.name,
    dir: f.ds.dir,
    branch: f.ds.branch,
    remote: f.ds.remote,
    state: f.current?.state ?? 'idle',
    recent_runs: [...f.history.slice(-20), ...[f.current].filter((r) => r !== undefined)].map((r) => ({ id: r.id, reason: r.reason, state: r.state })),
    progress: f.current?.progress,
    last_run: last && { id: last.id, finished_at: last.finishedAt, head: last.report!.head, seconds: last.report!.seconds, counts: last.report!.counts },
    // failed: every datum without a result (blocked ones too); blocked: those waiting on a failure upstream.
    pipelines: last?.report?.pipelines.map((p) => ({
      name: p.name,
      status: p.status,
      error: p.error,
      datums: p.datums.length,
      failed: p.datums.filter((x) => x.status === 'failed').length,
      blocked: p.datums.filter((x) => x.action === 'blocked').length,
    })),
  };
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([p, new Promise((r) => setTimeout(r, ms).unref())]);
}
