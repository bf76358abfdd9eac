/**
 * The daemon's HTTP server: `/healthz`, `/metrics` (Prometheus), the JSON API the CLI talks to
 * (`/api/...`), the event sources (`/hooks/...`), the dashboard at `/` (ui-routes.ts), and bull-board's
 * queue view at `/queues`. Routes only
 * translate between HTTP and the DaemonApi / EventIntake calls.
 */
import type { Server } from 'node:http';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { PathEscapeError, UsageError } from '../core/errors.js';
import { isJobState, JOB_STATES } from '../queue/datum-queue.js';
import type { EventIntake, IntakeAnswer } from '../sources/intake.js';
import { WebhookError } from '../sources/webhooks.js';
import { authorised, uiRoutes } from './ui-routes.js';
import { HttpError, selectorOf, type DaemonApi } from './api.js';

export interface ServerParts {
  readonly api: DaemonApi;
  /** The API token `/api`, `/queues` and `/metrics` require; none: open (loopback only, see config.ts). */
  readonly token?: string;
  readonly intake: EventIntake;
  /** bull-board's router, mounted at `/queues`. */
  readonly dashboard: Router;
}

export async function createServer(parts: ServerParts, host: string, port: number): Promise<Server> {
  const app = express();
  app.disable('x-powered-by');
  const auth = requireToken(parts.token);
  app.use(['/api', '/queues', '/metrics'], auth);
  app.use('/queues', parts.dashboard);
  serviceRoutes(app, parts.api);
  apiRoutes(app, parts.api);
  uiRoutes(app, parts.api, parts.token);
  hookRoutes(app, parts.intake);
  app.use(errorHandler);
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.on('error', reject);
  });
}

function serviceRoutes(app: Express, api: DaemonApi): void {
  app.get('/healthz', async (_req, res) => {
    const h = await api.health();
    res.status(h.ok ? 200 : 503).json({ ...h, pid: process.pid });
  });
  app.get('/metrics', async (_req, res) => {
    const m = await api.metrics();
    res.set('Content-Type', m.contentType).send(m.text);
  });
}

/**
 * Requests to the API, the queue view and the metrics carry the token, as a bearer token (the CLI) or as
 * the password of HTTP Basic (a browser asks for it): 401 without one, 403 with a wrong one.
 */
function requireToken(token: string | undefined): RequestHandler {
  return (req, res, next) => {
    if (!token) return next();
    const ok = authorised(req, token);
    if (ok === undefined) {
      res.set('WWW-Authenticate', 'Basic realm="minipach", charset="UTF-8"');
      return void res.status(401).json({ error: 'this daemon needs its API token: send "Authorization: Bearer <token>" (the CLI reads it from the daemon registration or MINIPACH_TOKEN)' });
    }
    if (!ok) return void res.status(403).json({ error: 'wrong API token' });
    next();
  };
}

/** A request that changes something must say it is JSON: a cross-site form cannot, so it cannot schedule. */
const jsonOnly: RequestHandler = (req, _res, next) => {
  if (req.method !== 'GET' && req.method !== 'HEAD' && !req.is('application/json')) throw new HttpError(415, `${req.method} ${req.path} takes a JSON body (Content-Type: application/json)`);
  next();
};

function apiRoutes(app: Express, api: DaemonApi): void {
  app.use('/api', jsonOnly, express.json({ limit: '1mb' }));
  app.post('/api/schedule', (req, res) => {
    res.status(202).json(api.schedule(selectorOf(req.body ?? {}), (req.body?.reason as string | undefined) ?? 'minipach schedule'));
  });
  app.get('/api/runs/:id', (req, res) => {
    const run = api.run(Number(req.params['id']));
    if (!run) throw new HttpError(404, `no run ${req.params['id']}`);
    res.json(run);
  });
  app.get('/api/status', async (_req, res) => {
    res.json(await api.status());
  });
  app.get('/api/jobs', async (req, res) => {
    const state = req.query['state'] as string | undefined;
    if (state !== undefined && !isJobState(state)) throw new HttpError(400, `unknown state "${state}"; one of ${JOB_STATES.join(', ')}`);
    res.json(await api.jobs(state));
  });
  app.get('/api/logs', async (req, res) => {
    res.json(await api.log(selectorOf(req.query), String(req.query['datum'] ?? '')));
  });
  app.post('/api/retry', async (req, res) => {
    const b = req.body ?? {};
    if (!b.datum && !b.failed) throw new HttpError(400, 'say which: {"datum": "<pipeline>/<datum>"} or {"failed": true}');
    res.status(202).json(await api.retry(selectorOf(b), { datum: b.datum ? String(b.datum) : undefined, failed: Boolean(b.failed) }));
  });
}

/** Each event source stores the event durably, then answers (202 for what it stored). */
function hookRoutes(app: Express, intake: EventIntake): void {
  const raw = express.raw({ type: () => true, limit: '25mb' });
  const body = (req: Request) => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
  const answer = (res: Response, a: IntakeAnswer) => void res.status(a.status).json(a.body);
  app.post('/hooks/git', raw, async (req, res) => answer(res, await intake.git(body(req), req.headers, String(req.query['repo'] ?? ''))));
  app.post('/hooks/gitea', raw, async (req, res) => answer(res, await intake.gitea(body(req), req.headers)));
  app.post('/hooks/minio', raw, async (req, res) => answer(res, await intake.minio(body(req), req.headers)));
}

function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  // A bad datum name or a path that would leave its directory is the request's fault; express's own
  // errors (a body too large, bad JSON) carry their status.
  const status = err instanceof HttpError || err instanceof WebhookError ? err.status : err instanceof UsageError || err instanceof PathEscapeError ? 400 : ((err as { status?: number }).status ?? 500);
  res.status(status).json({ error: (err as Error).message });
}
