/**
 * `minipach up`: the daemon. It owns Redis (the configured one, or a private redis-server), the datum
 * queue, one follower per (dataset, branch) that schedules it on request, the committer (inside each
 * follower's schedule: one writer per branch), optionally in-process workers, and the HTTP server.
 * It registers itself in each dataset's state dir (`daemon.json`) so that the CLI run in that dataset
 * sends `schedule` and the inspection commands here.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { remoteLocation } from './branch.js';
import type { DaemonConfig } from './config.js';
import { openDataset, type Dataset } from './dataset.js';
import { EventProcessor } from './events.js';
import { Follower, type RunInfo } from './follower.js';
import { Metrics } from './metrics.js';
import { REGISTRATION_FILE, type Registration } from './registration.js';
import { DatumQueue, QueueRunner } from './queue.js';
import { checkRedis, redisOptions, startEmbeddedRedis, type EmbeddedRedis } from './redis.js';
import { createServer } from './server.js';
import { startWorker, type RunningWorker } from './worker.js';

export class Daemon {
  readonly followers: Follower[] = [];
  /** Where HTTP sources spool their events before answering. */
  spoolDir = '';
  events?: EventProcessor;
  /** Remote URL (or clone path) of each follower's dataset: how webhooks name it. */
  readonly origins = new Map<Follower, string>();
  private redis?: Redis;
  readonly metrics = new Metrics();
  readonly startedAt = Date.now();
  private readonly abort = new AbortController();
  private readonly workers: RunningWorker[] = [];
  private server?: Server;
  private runIds = 0;
  /** Finish times of computed datums, for throughput. */
  readonly completions: number[] = [];
  url = '';

  private constructor(
    readonly config: DaemonConfig,
    readonly queue: DatumQueue,
    readonly redisUrl: string,
    private readonly embedded: EmbeddedRedis | undefined,
    readonly log: Logger,
  ) {}

  static async start(config: DaemonConfig, log: Logger = pino({ name: 'minipach' }, pino.destination(2))): Promise<Daemon> {
    // Datasets first: a wrong path or branch is reported before anything is started.
    const served: { name: string; ds: Dataset }[] = [];
    for (const dc of config.datasets) {
      const first = await openDataset(dc.path, dc.branches?.[0], dc.remote);
      for (const branch of dc.branches ?? [first.branch]) served.push({ name: dc.name, ds: branch === first.branch ? first : await openDataset(dc.path, branch, dc.remote) });
    }
    const stateDir = config.stateDir ?? path.join(served[0]!.ds.stateDir, 'daemon');
    await mkdir(stateDir, { recursive: true });
    let embedded: EmbeddedRedis | undefined;
    let redisUrl = config.redisUrl;
    if (redisUrl) await checkRedis(redisUrl);
    else {
      embedded = await startEmbeddedRedis(stateDir);
      redisUrl = embedded.url;
    }
    const connection = redisOptions(redisUrl) as ConnectionOptions;
    const queue = new DatumQueue({ connection, prefix: config.queuePrefix });
    const d = new Daemon(config, queue, redisUrl, embedded, log);
    d.metrics.jobCounts = () => queue.queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
    try {
      for (const { name, ds } of served) {
        // Workers clone from, and hand results in to, the remote when there is one, else the daemon's clone.
        const origin = (await remoteLocation(ds))?.url ?? ds.dir;
        const runner = new QueueRunner(queue, ds, { dataset: name, origin }, d.abort.signal);
        const f = new Follower(name, ds, runner, {
          nextRunId: () => ++d.runIds,
          log: (m) => log.warn(m),
          onRunEnd: (run) => d.runEnded(run),
        });
        d.followers.push(f);
        d.origins.set(f, origin);
      }
      d.redis = new Redis({ ...redisOptions(redisUrl), maxRetriesPerRequest: 2, lazyConnect: true });
      d.redis.on('error', () => undefined);
      for (let i = 0; i < config.workers; i++) {
        d.workers.push(await startWorker({ connection, prefix: config.queuePrefix, concurrency: config.concurrency, stateDir: path.join(stateDir, 'workers'), log: (m) => log.info(m) }));
      }
      d.server = await createServer(d, config.http.host, config.http.port);
      const addr = d.server.address();
      d.url = `http://${config.http.host}:${typeof addr === 'object' && addr ? addr.port : config.http.port}`;
      for (const f of d.followers) await d.register(f.ds, f.name);
      // Catch up: whatever happened while no daemon ran (and jobs finished meanwhile) is scheduled now,
      // and events spooled meanwhile (pushes while the daemon was down) are replayed.
      for (const f of d.followers) f.request('daemon started');
      d.spoolDir = path.join(stateDir, 'spool');
      d.events = new EventProcessor(d.followers, queue, log, config.minio);
      await d.events.start(d.spoolDir);
      if (config.pollSeconds > 0) d.poll(config.pollSeconds);
      log.info({ url: d.url, redis: embedded ? `embedded (${redisUrl})` : redisUrl }, 'minipach daemon ready');
      return d;
    } catch (e) {
      await d.stop();
      throw e;
    }
  }

  follower(dataset: { name?: string; dir?: string; branch?: string }): Follower | undefined {
    return this.followers.find(
      (f) => (dataset.name === undefined || f.name === dataset.name) && (dataset.dir === undefined || f.ds.dir === dataset.dir) && (dataset.branch === undefined || f.ds.branch === dataset.branch),
    );
  }

  findRun(id: number): RunInfo | undefined {
    for (const f of this.followers) {
      const r = f.find(id);
      if (r) return r;
    }
    return undefined;
  }

  /** The followers a webhook's repository is about (by `repository:` in the config, or by remote URL). */
  followersOfRepository(repo: { full_name?: string; clone_url?: string; ssh_url?: string; path?: string }): Follower[] {
    const byConfig = repo.full_name ? this.followers.filter((f) => this.config.datasets.find((c) => c.name === f.name)?.repository === repo.full_name) : [];
    if (byConfig.length) return byConfig;
    const strip = (u: string) => u.replace(/\/+$/, '').replace(/\.git$/, '');
    return this.followers.filter((f) => {
      const origin = strip(this.origins.get(f) ?? '');
      return (
        (repo.full_name && origin.endsWith(`/${repo.full_name}`)) ||
        [repo.clone_url, repo.ssh_url, repo.path].some((u) => u && (strip(u) === origin || path.resolve(u) === f.ds.dir || path.resolve(u) === f.ds.gitDir))
      );
    });
  }

  /**
   * Remembers an event's identity for a week; false when it was seen already (a replayed delivery).
   * With Redis away nothing is deduplicated: scheduling is idempotent anyway, so a replay costs one plan.
   */
  async firstSighting(identity: string): Promise<boolean> {
    try {
      if (this.redis!.status === 'wait') await this.redis!.connect();
      return (await this.redis!.set(this.sightingKey(identity), '1', 'EX', 7 * 24 * 3600, 'NX')) === 'OK';
    } catch {
      return true;
    }
  }

  async forgetSighting(identity: string): Promise<void> {
    await this.redis!.del(this.sightingKey(identity)).catch(() => undefined);
  }

  private sightingKey(identity: string): string {
    return `${this.config.queuePrefix}:events:seen:${createHash('sha256').update(identity).digest('hex')}`;
  }

  private runEnded(run: RunInfo): void {
    const now = Date.now();
    this.metrics.recordRun(run);
    for (let i = 0; i < (run.report?.counts.computed ?? 0); i++) this.completions.push(now);
    while (this.completions.length && this.completions[0]! < now - 3_600_000) this.completions.shift();
  }

  private pollTimer?: NodeJS.Timeout;
  private poll(seconds: number): void {
    this.pollTimer = setInterval(() => {
      for (const f of this.followers) if (f.ds.remote && !f.current) f.request('poll');
    }, seconds * 1000);
  }

  private async register(ds: Dataset, name: string): Promise<void> {
    const reg: Registration = { pid: process.pid, url: this.url, redisUrl: this.redisUrl, queuePrefix: this.config.queuePrefix, dataset: name };
    await writeFile(path.join(ds.stateDir, REGISTRATION_FILE), JSON.stringify(reg, null, 2) + '\n');
  }

  /**
   * Stops in order: no new requests, in-process workers finish their jobs (or hand them back after
   * `graceMs`), waiting schedules stop waiting (their jobs stay queued), an integration in progress
   * completes, then the queue and a private Redis close.
   */
  async stop(graceMs = 30_000): Promise<void> {
    clearInterval(this.pollTimer);
    this.events?.stop();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    this.server?.closeAllConnections();
    const stopping = this.followers.map((f) => f.stop());
    await Promise.all(this.workers.map((w) => withTimeout(w.close(), graceMs)));
    this.abort.abort();
    await Promise.all(stopping);
    for (const f of this.followers) {
      const file = path.join(f.ds.stateDir, REGISTRATION_FILE);
      const reg = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as Partial<Registration>;
      if (reg.pid === process.pid) await rm(file, { force: true });
    }
    await this.queue.close();
    this.redis?.disconnect();
    await this.embedded?.stop();
  }
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([p, new Promise((r) => setTimeout(r, ms).unref())]);
}
