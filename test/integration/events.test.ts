/**
 * Events: real pushes into a real bare repository with the hook installed, Gitea fixture payloads signed
 * as Gitea signs them, MinIO-shaped notifications for objects really uploaded to an S3-compatible server
 * (s3rver) through the real minio client, and files written into a watched dataset.
 */
import { createHmac } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Client as MinioClient } from 'minio';
import S3rver from 's3rver';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV, TestDataset } from '../helpers/dataset.js';
import { dones, spawnMinipach, startDaemon, startWorker, status, waitIdle, type Proc } from '../helpers/daemon.js';

const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url).pathname;
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name));

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});
function track<T extends Proc>(p: T): T {
  cleanups.push(() => p.kill9());
  return p;
}

const SPEC = ['input: {pfs: {repo: raw, glob: "/*"}}', 'transform:', '  cmd: [sh, -c]', `  stdin: ['cat "$MINIPACH_IN_raw"/* | wc -c > "$MINIPACH_OUT/bytes"']`].join('\n') + '\n';

/** A user's dataset, the shared bare repository it pushes to, and the daemon's own clone of it. */
async function shared(n: number) {
  const user = await TestDataset.create();
  cleanups.push(() => user.cleanup());
  const files: Record<string, string> = { 'count/spec.yml': SPEC };
  for (let i = 0; i < n; i++) files[`raw/s${i}/data.txt`] = `subject ${i}\n`;
  user.write(files);
  await user.save('data and pipeline');
  const root = path.dirname(user.dir);
  const bare = path.join(root, 'shared.git');
  await execa('git', ['clone', '-q', '--bare', user.dir, bare], { env: ENV });
  await execa('git', ['annex', 'init', '-q', 'shared'], { cwd: bare, env: ENV });
  await user.git('remote', 'add', 'origin', bare);
  await push(user);
  const clone = path.join(root, 'daemon-clone');
  await execa('git', ['clone', '-q', bare, clone], { env: ENV });
  await execa('git', ['annex', 'init', '-q', 'daemon'], { cwd: clone, env: ENV });
  cleanups.push(() => execa('redis-cli', ['-s', path.join(clone, '.git/minipach/daemon/redis/redis.sock'), 'shutdown', 'nosave'], { reject: false }));
  return { user, bare, clone: new TestDataset(clone) };
}

const push = (ds: TestDataset) => execa('datalad', ['push', '--to', 'origin'], { cwd: ds.dir, env: ENV });

/** What a user does before pushing to a branch that also receives results: bring them in. */
const pull = (ds: TestDataset) => ds.git('pull', '-q', '--no-rebase', '--no-edit', 'origin', 'master');

/** git push, pulling first whenever the daemon's results got there in between (as a user would). */
async function pushGit(ds: TestDataset, ...refs: string[]): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await execa('git', ['push', '-q', 'origin', ...refs], { cwd: ds.dir, env: ENV, reject: false });
    if (r.exitCode === 0) return;
    if (i > 20) throw new Error(r.stderr);
    // Bring in the daemon's results (master) and the workers' location records (git-annex).
    await ds.git('fetch', '-q', 'origin');
    await execa('git', ['annex', 'merge', '-q'], { cwd: ds.dir, env: ENV });
    await ds.git('merge', '-q', '--no-edit', 'origin/master');
  }
}

/** Waits until the bare repository's master has `path`. */
async function waitForPath(repo: string, file: string, timeoutMs = 60_000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const r = await execa('git', ['cat-file', '-e', `master:${file}`], { cwd: repo, reject: false });
    if (r.exitCode === 0) return Date.now() - start;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${file} did not appear on master of ${repo} within ${timeoutMs} ms`);
}

const sign = (body: Buffer, secret: string) => createHmac('sha256', secret).update(body).digest('hex');

describe('git push', () => {
  it('a push to a bare repository with the hook makes the outputs appear; an existing hook is chained and restored', async () => {
    const { user, bare, clone } = await shared(2);
    // git-annex (or the admin) had a post-receive of its own: it must keep running.
    const marker = path.join(bare, 'their-hook-ran');
    writeFileSync(path.join(bare, 'hooks/post-receive'), `#!/bin/sh\ncat >> ${marker}\n`);
    chmodSync(path.join(bare, 'hooks/post-receive'), 0o755);
    const inst = await user.minipach('hooks', 'install', bare, '--json');
    expect(JSON.parse(inst.stdout).changes[0]).toMatchObject({ hook: 'post-receive', action: 'installed, chaining the existing hook' });

    const daemon = track(await startDaemon(clone.dir, ['--remote', 'origin']));
    const w = track(await startWorker(clone.dir, daemon.redisUrl));
    await waitForPath(bare, 'count/s1/bytes');

    await pull(user);
    user.write({ 'raw/s2/data.txt': 'a new subject\n' });
    await user.save('a new subject');
    await push(user);
    const ms = await waitForPath(bare, 'count/s2/bytes');
    expect(readFileSync(marker, 'utf8')).toMatch(/refs\/heads\/master/);
    expect(ms).toBeLessThan(30_000);
    await waitIdle(daemon.url);
    expect([...dones(w).values()].every((c) => c === 1)).toBe(true);
    expect(dones(w).size).toBe(3);
    // Handled events leave nothing in the spool.
    expect(readdirSync(path.join(bare, 'minipach/spool')).filter((f) => f.endsWith('.event'))).toEqual([]);

    const un = await user.minipach('hooks', 'uninstall', bare, '--json');
    expect(JSON.parse(un.stdout)[0]).toMatchObject({ action: 'removed, restored the chained hook' });
    expect(readFileSync(path.join(bare, 'hooks/post-receive'), 'utf8')).toContain('their-hook-ran');
    await daemon.stop();
    await clone.fsck();
  });

  it('a push while the daemon is down succeeds, is spooled, and is processed when it starts', async () => {
    const { user, bare, clone } = await shared(1);
    await user.minipach('hooks', 'install', bare);
    user.write({ 'raw/s1/data.txt': 'pushed while nobody listens\n' });
    await user.save('while the daemon is down');
    await push(user);
    const spooled = readdirSync(path.join(bare, 'minipach/spool')).filter((f) => f.endsWith('.event'));
    expect(spooled.length).toBeGreaterThan(0);

    const daemon = track(await startDaemon(clone.dir, ['--remote', 'origin', '--workers', '1']));
    await waitForPath(bare, 'count/s1/bytes');
    // The same hand-off over HTTP, for servers that cannot run a hook here.
    const hook = (repo: string) =>
      fetch(`${daemon.url}/hooks/git`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repo, updates: [{ ref: 'refs/heads/master', after: 'f'.repeat(40) }] }) });
    const unknown = await hook('/srv/elsewhere.git');
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toMatch(/unknown repository "\/srv\/elsewhere\.git"/);
    expect((await hook(bare)).status).toBe(202);
    await waitIdle(daemon.url);
    expect(readdirSync(path.join(bare, 'minipach/spool')).filter((f) => f.endsWith('.event'))).toEqual([]);
    await daemon.stop();
  });

  it('a storm of pushes gives few plans, schedules the final state, and computes nothing twice', async () => {
    const { user, bare, clone } = await shared(1);
    await user.minipach('hooks', 'install', bare);
    const daemon = track(await startDaemon(clone.dir, ['--remote', 'origin']));
    const w = track(await startWorker(clone.dir, daemon.redisUrl, ['--concurrency', '2']));
    await waitForPath(bare, 'count/s0/bytes');
    await waitIdle(daemon.url);
    // Run ids count every schedule the daemon ran (recent_runs itself only lists the last 20).
    const lastRun = (st: Awaited<ReturnType<typeof status>>) => Math.max(...st.datasets[0]!.recent_runs.map((r) => r.id));
    const before = lastRun(await status(daemon.url));
    await pull(user);
    // 40 pushes, one commit each, as fast as git goes.
    const started = Date.now();
    for (let i = 1; i <= 40; i++) {
      user.write({ [`raw/s${i}/data.txt`]: `storm ${i}\n` });
      await user.git('add', '.');
      await user.git('commit', '-q', '-m', `storm ${i}`);
      await execa('git', ['annex', 'copy', '-q', '--to', 'origin', `raw/s${i}`], { cwd: user.dir, env: ENV });
      await pushGit(user, 'master', 'git-annex');
    }
    const stormSeconds = (Date.now() - started) / 1000;
    await waitForPath(bare, 'count/s40/bytes', 120_000);
    const s = await waitIdle(daemon.url);
    const plans = lastRun(s) - before;
    expect(plans, `${plans} plans for 40 pushes in ${stormSeconds}s`).toBeLessThan(20);
    const d = dones(w);
    expect(d.size).toBe(41);
    expect([...d.values()].every((c) => c === 1)).toBe(true);
    await daemon.stop();
  });
});

describe('Gitea / Forgejo webhooks', () => {
  const SECRET = 'test-secret-4f1c';

  it('signed fixture payloads: 202 and scheduled; bad or missing signature 401 and nothing stored; malformed 400; unknown repo 404; a replay computes nothing', async () => {
    const { user, bare, clone } = await shared(1);
    const config = path.join(path.dirname(clone.dir), 'minipach.yml');
    writeFileSync(config, `datasets:\n  - name: hello\n    path: ${clone.dir}\n    remote: origin\n    repository: gogits/hello-world\nsecrets:\n  gitea: ${SECRET}\n`);
    const daemon = track(await startDaemon(clone.dir, ['--config', config]));
    const w = track(await startWorker(clone.dir, daemon.redisUrl));
    await waitForPath(bare, 'count/s0/bytes');
    await waitIdle(daemon.url);
    const spool = path.join(clone.dir, '.git/minipach/daemon/spool');
    const post = (body: Buffer, headers: Record<string, string>) =>
      fetch(`${daemon.url}/hooks/gitea`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', ...headers } });

    // A push Gitea knows about (no hook in this repository): only the webhook can trigger it.
    await pull(user);
    user.write({ 'raw/s1/data.txt': 'via gitea\n' });
    await user.save('a subject pushed through Gitea');
    await push(user);
    const body = fixture('gitea/push.json');
    const bad = await post(body, { 'x-gitea-signature': sign(body, 'wrong'), 'x-hub-signature-256': `sha256=${sign(body, 'wrong')}` });
    expect(bad.status).toBe(401);
    expect((await bad.json()).error).toMatch(/signature does not match/);
    expect((await post(body, {})).status).toBe(401);
    const tampered = Buffer.from(body.toString().replace('"master"', '"mistress"'));
    expect((await post(tampered, { 'x-gitea-signature': sign(body, SECRET) })).status).toBe(401);
    expect(readdirSync(spool)).toEqual([]);
    const malformed = Buffer.from('{"ref": "refs/heads/master",');
    expect((await post(malformed, { 'x-gitea-signature': sign(malformed, SECRET) })).status).toBe(400);
    const docs = fixture('gitea/push-docs.json');
    const unknown = await post(docs, { 'x-gitea-signature': sign(docs, SECRET) });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toMatch(/unknown repository "gitea\/webhooks"/);

    const ok = await post(body, { 'x-gitea-signature': sign(body, SECRET), 'x-hub-signature-256': `sha256=${sign(body, SECRET)}` });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toMatchObject({ stored: true, event: 'push', ref: 'refs/heads/master', after: '4522cbcefc20728a5b72b3a86af35e608622c514' });
    await waitForPath(bare, 'count/s1/bytes');
    await waitIdle(daemon.url);
    const runs = (await status(daemon.url)).datasets[0]!.recent_runs;
    expect(runs.some((r) => /push master 9836a96a\.\.4522cbce/.test(r.reason) && r.state === 'done')).toBe(true);

    // Gitea redelivers with a new delivery id: same (repo, ref, after), nothing computed again.
    const replay = await post(body, { 'x-forgejo-signature': sign(body, SECRET), 'x-gitea-delivery': 'another-delivery' });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toMatchObject({ duplicate: true });
    const del = fixture('gitea/branch-delete.json');
    expect((await post(del, { 'x-gitea-event': 'delete', 'x-gitea-signature': sign(del, SECRET) })).status).toBe(202);
    await waitIdle(daemon.url);
    expect(dones(w).size).toBe(2);
    expect([...dones(w).values()].every((c) => c === 1)).toBe(true);
    await daemon.stop();
  });
});

describe('MinIO notifications', () => {
  it('an uploaded object is added and processed, a delete removes it, a traversal key is refused', async () => {
    const s3dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-s3-'));
    const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: s3dir, configureBuckets: [{ name: 'vd-main', configs: [] }] });
    const { port } = (await s3.run()) as { port: number };
    cleanups.push(() => s3.close());
    const client = new MinioClient({ endPoint: '127.0.0.1', port, useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER', pathStyle: true });
    const content = 'newmtl tile\nKd 0.8 0.8 0.8\n';
    await client.putObject('vd-main', 'Tile_+002_+002.mtl', Buffer.from(content));

    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    ds.write({ 'count/spec.yml': SPEC.replace('glob: "/*"', 'glob: "/*.mtl"').replace('cat "$MINIPACH_IN_raw"/*', 'cat "$MINIPACH_IN_raw"'), 'raw/.keep': '' });
    await ds.save('pipeline');
    const config = path.join(path.dirname(ds.dir), 'minipach.yml');
    writeFileSync(
      config,
      `datasets:\n  - path: ${ds.dir}\n    minio: [{bucket: vd-main, path: raw}]\nminio: {endpoint: "http://127.0.0.1:${port}", access_key: S3RVER, secret_key: S3RVER}\nsecrets: {minio: tok-123}\nworkers: 1\n`,
    );
    cleanups.push(() => execa('redis-cli', ['-s', path.join(ds.dir, '.git/minipach/daemon/redis/redis.sock'), 'shutdown', 'nosave'], { reject: false }));
    const daemon = track(await startDaemon(ds.dir, ['--config', config, '--workers', '1']));
    const post = (body: Buffer | string, token = 'tok-123') =>
      fetch(`${daemon.url}/hooks/minio`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });

    expect((await post(fixture('minio/put.json'), 'nope')).status).toBe(401);
    const put = await post(fixture('minio/put.json'));
    expect(put.status).toBe(202);
    expect(await put.json()).toEqual({ stored: 1, refused: [] });
    await waitForPath(ds.dir, 'count/Tile_+002_+002.mtl/bytes');
    await waitIdle(daemon.url);
    // The key was decoded (%2B is "+"), the content is the uploaded object's, annexed, and the working tree followed.
    expect(readFileSync(path.join(ds.dir, 'raw/Tile_+002_+002.mtl'), 'utf8')).toBe(content);
    expect((await ds.git('ls-tree', 'HEAD', 'raw/Tile_+002_+002.mtl')).startsWith('120000')).toBe(true);
    expect(readFileSync(path.join(ds.dir, 'count/Tile_+002_+002.mtl/bytes'), 'utf8').trim()).toBe(String(content.length));

    await client.removeObject('vd-main', 'Tile_+002_+002.mtl');
    expect((await post(fixture('minio/delete.json'))).status).toBe(202);
    const deadline = Date.now() + 60_000;
    while (existsSync(path.join(ds.dir, 'count/Tile_+002_+002.mtl')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await waitIdle(daemon.url);
    expect(await ds.git('ls-tree', '-r', '--name-only', 'HEAD', 'raw', 'count')).toBe('count/spec.yml\nraw/.keep');

    // The fixture's shape, with keys that try to leave the dataset or the configured bucket.
    const evil = JSON.parse(fixture('minio/put.json').toString()) as { Records: { s3: { object: { key: string }; bucket: { name: string } } }[] };
    const before = await ds.head();
    for (const key of ['..%2F..%2F.git%2Fconfig', '%2Fetc%2Fpasswd', 'a%2F..%2F..%2Fb']) {
      evil.Records[0]!.s3.object.key = key;
      const r = await post(JSON.stringify(evil));
      expect(r.status).toBe(200);
      expect((await r.json()).refused[0]).toMatch(/never written into a dataset/);
    }
    evil.Records[0]!.s3.object.key = 'x.mtl';
    evil.Records[0]!.s3.bucket.name = 'other-bucket';
    expect((await (await post(JSON.stringify(evil))).json()).refused[0]).toMatch(/outside every configured bucket/);
    expect((await post('not json')).status).toBe(400);
    await waitIdle(daemon.url);
    expect(await ds.head()).toBe(before);
    await daemon.stop();
    await ds.fsck();
  });
});

describe('watch', () => {
  it('files written into a watched dataset are saved once after the quiet period, then processed', async () => {
    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    ds.write({ 'count/spec.yml': SPEC, 'raw/s0/data.txt': 'zero\n' });
    await ds.save('pipeline');
    const w = track(spawnMinipach(['watch', '--quiet-ms', '1000', '--local'], { cwd: ds.dir }));
    await w.waitFor(/watching/);
    // Written in bursts shorter than the quiet period: one save.
    ds.write({ 'raw/s1/data.txt': 'one\n' });
    await new Promise((r) => setTimeout(r, 300));
    ds.write({ 'raw/s2/data.txt': 'two\n', 'raw/s2/more.txt': 'more\n' });
    await w.waitFor(/scheduled: 3 computed/, 60_000);
    const saved = await w.waitFor(/saved \d+ path\(s\) as \w+: (.*)/);
    for (const f of ['raw/s1/data.txt', 'raw/s2/data.txt', 'raw/s2/more.txt']) expect(saved[1]).toContain(f);
    expect(w.output().match(/saved \d+ path/g)).toHaveLength(1);
    const subjects = (await ds.git('log', '--format=%s')).split('\n').filter((s) => s.startsWith('minipach watch'));
    expect(subjects).toHaveLength(1);
    expect(readFileSync(path.join(ds.dir, 'count/s2/bytes'), 'utf8').trim()).toBe('9');
    expect(await w.stop()).toBe(0);
    await ds.fsck();
  });
});
