/**
 * The daemon's HTTP server, attacked as it would be: without a token, with a wrong one, from a cross-site
 * form, and with names that try to leave their directory. Real daemon, real HTTP.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestDataset } from '../helpers/dataset.js';
import { spawnMinipach, startDaemon, waitIdle, type Proc } from '../helpers/daemon.js';

const TOKEN = 'a-long-test-token-0123456789';
const GIT_SECRET = 'git-hook-secret-xyz';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const basic = (pw: string) => ({ authorization: `Basic ${Buffer.from(`anyone:${pw}`).toString('base64')}` });

describe('the HTTP server', () => {
  it('with a token: every route of the API, the queue view and the metrics need it; names never leave their directory; forms cannot schedule', async () => {
    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    ds.write({ 'raw/a.txt': 'a\n', 'stats/spec.yml': 'input: {pfs: {repo: raw, glob: "/*"}}\ntransform: {cmd: [sh, -c], stdin: [\'wc -c < "$MINIPACH_IN_raw" > "$MINIPACH_OUT/n"\']}\n' });
    await ds.save();
    // A log file outside the logs directory that a traversal would read.
    const gitDir = path.join(ds.dir, '.git');
    mkdirSync(path.join(gitDir, 'minipach'), { recursive: true });
    writeFileSync(path.join(gitDir, 'minipach', 'secret.log'), 'TOP SECRET\n');
    writeFileSync(path.join(gitDir, 'secret.log'), 'TOP SECRET\n');

    const daemon = await startDaemon(ds.dir, ['--workers', '1'], { MINIPACH_API_TOKEN: TOKEN, MINIPACH_GIT_SECRET: GIT_SECRET });
    cleanups.push(() => daemon.stop());
    const get = (route: string, headers: Record<string, string> = {}) => fetch(`${daemon.url}${route}`, { headers });
    const post = (route: string, body: string, headers: Record<string, string> = {}) => fetch(`${daemon.url}${route}`, { method: 'POST', body, headers });

    // The CLI finds the token in the daemon's registration, so commands work as before.
    const st = spawnMinipach(['status', '--json'], { cwd: ds.dir });
    await st.proc;
    expect(JSON.parse(st.output()).datasets[0].name).toBeTruthy();

    for (const route of ['/api/status', '/api/jobs', '/api/runs/1', '/api/logs?datum=stats/a.txt', '/queues', '/queues/api/queues', '/metrics']) {
      const none = await get(route);
      expect(none.status, `${route} without a token`).toBe(401);
      expect((await get(route, bearer('wrong-token-wrong-token'))).status, `${route} with a wrong token`).toBe(403);
    }
    expect((await get('/api/status', bearer(TOKEN))).status).toBe(200);
    // A browser gets a login prompt for the queue view, and HTTP Basic with the token as password passes.
    expect((await get('/queues')).headers.get('www-authenticate')).toMatch(/^Basic realm="minipach"/);
    expect((await get('/queues', basic(TOKEN))).status).toBe(200);
    expect((await get('/metrics', bearer(TOKEN))).status).toBe(200);
    expect((await get('/healthz')).status).toBe(200);

    // Nothing scheduled without the token, nor by a cross-site form (not JSON), nor by text/plain.
    const runsBefore = (await (await get('/api/status', bearer(TOKEN))).json()).datasets[0].recent_runs.length;
    expect((await post('/api/schedule', '{}', { 'content-type': 'application/json' })).status).toBe(401);
    expect((await post('/api/schedule', 'reason=x', { ...bearer(TOKEN), 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await post('/api/schedule', '{}', { ...bearer(TOKEN), 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post('/api/retry', '{"failed": true}', { ...bearer(TOKEN), 'content-type': 'text/plain' })).status).toBe(415);
    expect((await (await get('/api/status', bearer(TOKEN))).json()).datasets[0].recent_runs.length).toBe(runsBefore);

    // Traversal in every name a request gives: refused, and nothing outside the logs directory is read.
    for (const datum of ['stats/../../../secret', 'stats/../../secret', '../secret', '..%2F..%2Fsecret', 'stats/..', '/etc/passwd', 'stats/../../../../../../etc/hostname']) {
      const r = await get(`/api/logs?datum=${encodeURIComponent(datum)}`, bearer(TOKEN));
      const text = await r.text();
      expect([400, 404], `${datum}: ${text}`).toContain(r.status);
      expect(text).not.toContain('TOP SECRET');
    }
    const retry = await post('/api/retry', JSON.stringify({ datum: '../../x' }), { ...bearer(TOKEN), 'content-type': 'application/json' });
    expect(retry.status).toBe(400);
    expect((await get('/api/runs/..%2F..%2Fetc', bearer(TOKEN))).status).toBe(404);
    const wrongDataset = await post('/api/schedule', JSON.stringify({ dir: '/etc' }), { ...bearer(TOKEN), 'content-type': 'application/json' });
    expect(wrongDataset.status).toBe(404);

    // /hooks/git takes its own secret when one is configured.
    const hook = JSON.stringify({ repo: ds.dir, updates: [{ ref: 'refs/heads/master', after: 'f'.repeat(40) }] });
    expect((await post('/hooks/git', hook, { 'content-type': 'application/json' })).status).toBe(401);
    expect((await post('/hooks/git', hook, { 'content-type': 'application/json', ...bearer('nope') })).status).toBe(401);
    expect((await post('/hooks/git', hook, { 'content-type': 'application/json', ...bearer(GIT_SECRET) })).status).toBe(202);

    // And with the token, the API works: a real schedule and its log.
    expect((await post('/api/schedule', '{}', { ...bearer(TOKEN), 'content-type': 'application/json' })).status).toBe(202);
    await waitIdle(daemon.url, 60_000, TOKEN);
    const log = await get('/api/logs?datum=stats/a.txt', bearer(TOKEN));
    expect(log.status).toBe(200);
    expect((await log.json()).log).toContain('MINIPACH_DATUM=a.txt');
  });

  it('refuses to listen beyond loopback without a token', async () => {
    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    const up: Proc = spawnMinipach(['up', ds.dir, '--port', '0', '--workers', '0'], { cwd: ds.dir, env: { MINIPACH_HTTP_HOST: '0.0.0.0' } });
    cleanups.push(() => up.stop());
    const code = await up.proc.then((r) => r.exitCode);
    expect(code).toBe(2);
    expect(up.output()).toMatch(/beyond loopback, without an API token; set http.token \(or MINIPACH_API_TOKEN\)/);
  });
});
