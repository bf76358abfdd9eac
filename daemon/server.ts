/**
 * The daemon's HTTP server: `/healthz`, `/metrics` (Prometheus), the JSON API the CLI talks to
 * (`/api/...`), and the BullMQ dashboard of bull-board at `/queues`.
 */
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { JobState } from 'bullmq';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Daemon } from './daemon.js';
import type { Follower } from './follower.js';
import { checkRedis } from './redis.js';
import type { PathChange } from './ingest.js';
import { ResultStore } from './result-store.js';
import { parseHookEvent, writeSpool, type GitEvent, type RefUpdate } from './spool.js';
import { objectPath, parseGiteaEvent, parseMinioRecords, verifyBearer, verifyGiteaSignature, WebhookError } from './webhooks.js';

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const JOB_STATES: readonly JobState[] = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children'];

/** `pipeline/datum` (datum `.` is the pipeline's root datum) -> [pipeline, datum name]. */
export function parseDatumRef(ref: string): [string, string] {
  const i = ref.indexOf('/');
  if (i <= 0) throw new HttpError(400, `"${ref}" is not <pipeline>/<datum> (use <pipeline>/. for a pipeline's single datum)`);
  const name = ref.slice(i + 1);
  return [ref.slice(0, i), name === '.' ? '' : name];
}

export async function createServer(d: Daemon, host: string, port: number): Promise<Server> {
  const app = express();
  app.disable('x-powered-by');
  app.use('/api', express.json({ limit: '1mb' }));

  const board = new ExpressAdapter();
  board.setBasePath('/queues');
  createBullBoard({ queues: [new BullMQAdapter(d.queue.queue)], serverAdapter: board });
  app.use('/queues', board.getRouter());

  app.get('/healthz', async (_req, res) => {
    try {
      await checkRedis(d.redisUrl, 1000);
      res.json({ ok: true, redis: 'up', pid: process.pid });
    } catch (e) {
      res.status(503).json({ ok: false, redis: 'down', error: (e as Error).message });
    }
  });

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', d.metrics.registry.contentType).send(await d.metrics.registry.metrics());
  });

  const follower = (q: Record<string, unknown>): Follower => {
    const sel = { name: q['dataset'] as string | undefined, dir: q['dir'] as string | undefined, branch: q['branch'] as string | undefined };
    const f = d.follower(sel);
    if (!f) {
      const known = d.followers.map((x) => `${x.name} (${x.ds.dir}, ${x.ds.branch})`).join('; ');
      throw new HttpError(404, `this daemon does not serve ${sel.name ?? sel.dir ?? 'that dataset'}${sel.branch ? ` branch ${sel.branch}` : ''}; it serves: ${known}`);
    }
    return f;
  };

  app.post('/api/schedule', (req, res) => {
    const f = follower(req.body ?? {});
    const run = f.request((req.body?.reason as string | undefined) ?? 'minipach schedule');
    res.status(202).json(run);
  });

  app.get('/api/runs/:id', (req, res) => {
    const run = d.findRun(Number(req.params['id']));
    if (!run) throw new HttpError(404, `no run ${req.params['id']}`);
    res.json(run);
  });

  app.get('/api/status', async (_req, res) => {
    const jobs = await d.queue.queue.getJobCounts(...JOB_STATES);
    const now = Date.now();
    const lastMinute = d.completions.filter((t) => t > now - 60_000).length;
    const lastTen = d.completions.filter((t) => t > now - 600_000).length;
    res.json({
      daemon: { pid: process.pid, url: d.url, redis: d.redisUrl, uptime_seconds: Math.round((now - d.startedAt) / 1000) },
      jobs,
      throughput: { computed_last_minute: lastMinute, computed_per_minute_last_10_minutes: lastTen / 10 },
      datasets: d.followers.map((f) => {
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
          pipelines: last?.report?.pipelines.map((p) => ({
            name: p.name,
            status: p.status,
            error: p.error,
            datums: p.datums.length,
            failed: p.datums.filter((x) => x.status === 'failed').length,
          })),
        };
      }),
    });
  });

  app.get('/api/jobs', async (req, res) => {
    const state = req.query['state'] as string | undefined;
    if (state && !JOB_STATES.includes(state as JobState)) throw new HttpError(400, `unknown state "${state}"; one of ${JOB_STATES.join(', ')}`);
    res.json(await d.queue.summaries(state ? [state as JobState] : [...JOB_STATES]));
  });

  app.get('/api/logs', async (req, res) => {
    const f = follower(req.query);
    const [pipeline, name] = parseDatumRef(String(req.query['datum'] ?? ''));
    const file = path.join(f.ds.stateDir, 'logs', pipeline, `${name || '_root'}.log`);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return void res.json({ datum: `${pipeline}/${name || '.'}`, source: file, log: text });
    // Not settled yet: the last failed try's log, if a worker wrote one.
    const jobs = await d.queue.queue.getJobs(['active', 'waiting', 'delayed', 'failed'], 0, -1);
    const job = jobs.find((j) => j && j.data.dataset === f.name && j.data.pipeline === pipeline && j.data.datumName === name);
    if (!job?.data.lastTry) throw new HttpError(404, `no log for ${pipeline}/${name || '.'} yet (it has not run here)`);
    res.json({ datum: `${pipeline}/${name || '.'}`, source: `job ${job.id}`, log: job.data.lastTry.log });
  });

  app.post('/api/retry', async (req, res) => {
    const f = follower(req.body ?? {});
    const want = req.body?.datum ? parseDatumRef(String(req.body.datum)) : undefined;
    if (!want && !req.body?.failed) throw new HttpError(400, 'say which: {"datum": "<pipeline>/<datum>"} or {"failed": true}');
    const failed = (await d.queue.queue.getJobs(['failed'], 0, -1)).filter(
      (j) => j && j.data.dataset === f.name && (!want || (j.data.pipeline === want[0] && j.data.datumName === want[1])),
    );
    for (const j of failed) await j.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    await new ResultStore(f.ds).clearFailures(failed.map((j) => j.data.key));
    const run = f.request('minipach retry');
    res.status(202).json({ retried: failed.map((j) => `${j.data.pipeline}/${j.data.datumName || '.'}`), run });
  });

  // ---- event sources: each stores the event durably, then answers 202 -----------------------------

  const raw = express.raw({ type: () => true, limit: '25mb' });
  const json = (buf: unknown): unknown => {
    try {
      return JSON.parse(Buffer.isBuffer(buf) ? buf.toString('utf8') : '');
    } catch (e) {
      throw new WebhookError(400, `the body is not valid JSON (${(e as Error).message})`);
    }
  };

  /** `{"repo": <path or URL>, "dataset": <name>?, "updates": [{"ref", "before"?, "after"}]}` or a hook's stdin lines. */
  app.post('/hooks/git', raw, async (req, res) => {
    const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    let ev: GitEvent & { dataset?: string };
    if ((req.headers['content-type'] ?? '').includes('json')) {
      const b = json(req.body) as { repo?: string; dataset?: string; updates?: RefUpdate[] };
      if (!Array.isArray(b.updates) || !b.updates.every((u) => typeof u?.ref === 'string' && typeof u.after === 'string')) {
        throw new WebhookError(400, 'expected {"repo": "...", "updates": [{"ref": "refs/heads/main", "before": "<sha>", "after": "<sha>"}]}');
      }
      ev = { kind: 'git', repo: b.repo ?? '', updates: b.updates, dataset: b.dataset };
    } else {
      // The post-receive format: "<old> <new> <ref>" lines, with ?repo= naming the repository.
      ev = parseHookEvent(`post-receive\n${String(req.query['repo'] ?? '')}\n${text}`);
    }
    const followers = ev.dataset ? d.followers.filter((f) => f.name === ev.dataset) : d.followersOfRepository({ path: ev.repo, clone_url: ev.repo });
    if (!followers.length) throw new WebhookError(404, `unknown repository "${ev.dataset ?? ev.repo}": no dataset of this daemon has it as its clone or remote`);
    for (const f of new Set(followers.map((x) => x.name))) await writeSpool(d.spoolDir, { ...ev, dataset: f });
    res.status(202).json({ stored: true, datasets: [...new Set(followers.map((f) => f.name))] });
  });

  app.post('/hooks/gitea', raw, async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const secret = d.config.secrets.gitea;
    if (secret) verifyGiteaSignature(body, req.headers, secret);
    const eventHeader = (req.headers['x-gitea-event'] ?? req.headers['x-forgejo-event'] ?? req.headers['x-gogs-event'] ?? req.headers['x-github-event']) as string | undefined;
    const ev = parseGiteaEvent(eventHeader, json(body));
    if (!ev) return void res.status(202).json({ stored: false, reason: `event "${eventHeader}" is not about a branch; ignored` });
    const followers = d.followersOfRepository(ev.repository);
    if (!followers.length) throw new WebhookError(404, `unknown repository "${ev.repository.full_name}": no dataset has repository: ${ev.repository.full_name} or a remote at ${ev.repository.clone_url ?? '?'}`);
    const identity = `gitea\0${ev.repository.full_name}\0${ev.update.ref}\0${ev.kind === 'delete' ? 'deleted' : ev.update.after}`;
    if (!(await d.firstSighting(identity))) return void res.status(202).json({ stored: false, duplicate: true });
    try {
      for (const name of new Set(followers.map((f) => f.name))) {
        await writeSpool(d.spoolDir, { kind: 'git', repo: ev.repository.full_name, dataset: name, updates: [ev.update], source: ev.kind, delivery: req.headers['x-gitea-delivery'] });
      }
    } catch (e) {
      // Not stored: a redelivery must not be mistaken for a duplicate.
      await d.forgetSighting(identity);
      throw e;
    }
    res.status(202).json({ stored: true, event: ev.kind, ref: ev.update.ref, after: ev.update.after, datasets: [...new Set(followers.map((f) => f.name))] });
  });

  app.post('/hooks/minio', raw, async (req, res) => {
    const token = d.config.secrets.minio;
    if (token) verifyBearer(req.headers['authorization'], token);
    const changes = parseMinioRecords(json(req.body));
    const accepted = new Map<string, PathChange[]>();
    const refused: string[] = [];
    for (const c of changes) {
      const verdicts = d.config.datasets.map((dc) => [dc.name, objectPath(dc.minio, c.bucket, c.key)] as const);
      const placed = verdicts.filter((v): v is readonly [string, { path: string }] => 'path' in v[1]);
      for (const [dataset, where] of placed) accepted.set(dataset, [...(accepted.get(dataset) ?? []), { op: c.op, bucket: c.bucket, key: c.key, path: where.path }]);
      if (placed.length) continue;
      // Refused, and still a 2xx: MinIO would otherwise redeliver it forever. The most specific reason wins.
      const reasons = verdicts.map(([, w]) => ('refused' in w ? w.refused : ''));
      const reason = reasons.find((r) => r && !r.includes('outside every')) ?? `s3://${c.bucket}/${c.key} is outside every configured bucket/prefix`;
      refused.push(reason);
      d.log.warn({ bucket: c.bucket, key: c.key, reason }, 'object refused');
    }
    for (const [dataset, list] of accepted) await writeSpool(d.spoolDir, { kind: 'objects', dataset, changes: list });
    res.status(accepted.size ? 202 : 200).json({ stored: [...accepted.values()].flat().length, refused });
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = err instanceof HttpError || err instanceof WebhookError ? err.status : (err as { status?: number }).status ?? 500;
    res.status(status).json({ error: (err as Error).message });
  });

  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.on('error', reject);
  });
}
