/**
 * The dashboard's routes: the page at `/`, its assets at `/ui/...`, sign-in with the API token (a session
 * cookie, so the page's scripts and its event stream carry it), the JSON it reads (`/api/overview`,
 * `/api/explain`, `/api/outputs`) and its live updates (`/api/events`, server-sent events).
 */
import { createHash } from 'node:crypto';
import express, { type Express, type Request, type RequestHandler } from 'express';
import { assetFile, livePage, loginPage } from '../ui/page.js';
import { credentialOf, safeEqual } from '../sources/webhooks.js';
import { HttpError, selectorOf, type DaemonApi } from './api.js';

const SESSION_COOKIE = 'minipach_session';

/** The session cookie's value: derived from the token, so the token itself is never stored by the browser. */
const sessionOf = (token: string) => createHash('sha256').update(`minipach dashboard session\0${token}`).digest('hex');

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

/** Whether a request carries the token (bearer, HTTP Basic password) or the dashboard's session cookie. */
export function authorised(req: Request, token: string): boolean | undefined {
  const given = credentialOf(req.headers.authorization);
  if (given !== undefined) return safeEqual(given, token);
  const session = cookie(req, SESSION_COOKIE);
  return session === undefined ? undefined : safeEqual(session, sessionOf(token));
}

/** The page's own guard: without the token a browser gets the sign-in page, and nothing else. */
function pageGuard(token: string | undefined): RequestHandler {
  return (req, res, next) => {
    if (!token) return next();
    const ok = authorised(req, token);
    if (ok) return next();
    res.status(401).type('html').send(loginPage(ok === false ? 'That is not the token; try again.' : undefined));
  };
}

export function uiRoutes(app: Express, api: DaemonApi, token: string | undefined): void {
  const guard = pageGuard(token);
  app.post('/login', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    if (!token) return void res.redirect(303, '/');
    if (!safeEqual(String((req.body as { token?: unknown } | undefined)?.token ?? ''), token)) return void res.status(403).type('html').send(loginPage('That is not the token; try again.'));
    res.cookie(SESSION_COOKIE, sessionOf(token), { httpOnly: true, sameSite: 'strict', path: '/', secure: req.secure });
    res.redirect(303, '/');
  });
  app.get('/', guard, async (_req, res) => {
    res.type('html').set('Cache-Control', 'no-store').send(await livePage());
  });
  app.get(/^\/ui\/(.+)$/, guard, (req, res) => {
    const file = assetFile(String((req.params as Record<string, string>)[0]));
    if (!file) throw new HttpError(404, 'no such asset');
    res.sendFile(file);
  });
  app.get('/api/overview', async (req, res) => void res.json(await api.overview(selectorOf(req.query))));
  app.get('/api/explain', async (req, res) => void res.json(await api.explain(selectorOf(req.query), String(req.query['path'] ?? ''))));
  app.get('/api/outputs', async (req, res) => void res.json(await api.outputs(selectorOf(req.query), 5000)));
  app.get('/api/events', (req, res) => {
    res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.flushHeaders();
    res.write('retry: 2000\n\n');
    // Changes come in bursts (a batch of jobs ends): at most one message per quarter second.
    let timer: NodeJS.Timeout | undefined;
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    const end = () => {
      unsubscribe();
      clearInterval(ping);
      clearTimeout(timer);
    };
    const unsubscribe = api.subscribe((change) => {
      // The daemon stops: the stream ends (the page reconnects to the next daemon by itself).
      if (change.what === 'daemon stopping') return void (end(), res.end());
      timer ??= setTimeout(() => {
        timer = undefined;
        res.write(`data: ${JSON.stringify(change)}\n\n`);
      }, 250);
    });
    req.on('close', end);
  });
}
