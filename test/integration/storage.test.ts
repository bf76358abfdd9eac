/**
 * Storage that is not shared (issue 18): the dataset's content lives in an S3 bucket (s3rver, through
 * git-annex's own S3 special remote), git in a bare origin that holds no content at all (as a Gitea
 * repository), and two workers that share no directory with the daemon. Checked: where every result's
 * content is, a fresh clone getting it all from the bucket, a bucket outage in the middle of a run, and
 * the errors for wrong and missing credentials.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annex } from '../../daemon/adapters/annex.js';
import { ENV, TestDataset, treeKeys } from '../helpers/dataset.js';
import { runCommits, spawnMinipach, startDaemon, waitIdle, type Proc, type RunningDaemon } from '../helpers/daemon.js';
import { inBucket, S3_CREDENTIALS, startS3, type TestS3 } from '../helpers/s3.js';

const BUCKET = 'annex';
const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url).pathname;
const SPEC = ['input: {pfs: {repo: raw, glob: "/*"}}', 'transform:', '  cmd: [sh, -c]', `  stdin: ['sleep 0.2; cat "$MINIPACH_IN_raw"/* | tr a-z A-Z > "$MINIPACH_OUT/upper.txt"']`].join('\n') + '\n';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

const S3ENV = { ...ENV, ...S3_CREDENTIALS };
/** The user's branch (whatever git's default is here), which receives the results. */
let branch = 'main';
const git = (cwd: string, ...args: string[]) => execa('git', args, { cwd, env: S3ENV });

/** Every annexed file of `dir` at the origin's branch: path -> key. */
async function annexedOutputs(repo: string, dir: string): Promise<Record<string, string>> {
  return Object.fromEntries(Object.entries(await treeKeys(repo, branch, dir)).filter(([p, k]) => !p.endsWith('spec.yml') && /^[A-Z0-9]+-s\d+/.test(k)));
}

/** Files under `dir` whose name is one of `keys` (git-annex keeps an object in a directory named after its key). */
function objectsIn(dir: string, keys: readonly string[]): string[] {
  const wanted = new Set(keys);
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (wanted.has(e.name)) found.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

describe('an S3 bucket as the dataset content store', () => {
  let s3: TestS3;
  let user: TestDataset;
  let root: string;
  let origin: string;
  let clone: string;
  let daemon: RunningDaemon;
  const workerState: string[] = [];
  const workers: Proc[] = [];

  const pushData = async (from: number, to: number) => {
    // The daemon pushed results (and the git-annex branch) meanwhile: bring both in first.
    await user.git('pull', '-q', '--ff-only', 'origin', branch).catch(() => undefined);
    await user.git('fetch', '-q', 'origin');
    await user.git('annex', 'merge');
    const files: Record<string, string> = {};
    for (let i = from; i < to; i++) files[`raw/s${i}/data.txt`] = `subject ${i}\n`;
    user.write(files);
    await user.save(`subjects ${from}-${to - 1}`);
    // Content to the bucket first (publish-depends, set by storage init), then git and the git-annex branch.
    await execa('datalad', ['push', '--to', 'origin'], { cwd: user.dir, env: S3ENV });
  };

  beforeAll(async () => {
    s3 = await startS3([BUCKET, 'vd-main']);
    cleanups.push(() => s3.stop());
    user = await TestDataset.create();
    cleanups.push(() => user.cleanup());
    branch = (await user.git('branch', '--show-current')).trim();
    root = path.dirname(user.dir);
    origin = path.join(root, 'origin.git');
    // The git origin holds git only (a Gitea repository): no annex, and clones are told to leave it alone.
    await execa('git', ['init', '-q', '--bare', origin], { env: ENV });
    await user.git('remote', 'add', 'origin', origin);
    await user.git('config', 'remote.origin.annex-ignore', 'true');
    const init = await user.minipachWith(S3_CREDENTIALS, 'storage', 'init', '--name', 's3', '--bucket', BUCKET, '--endpoint', s3.endpoint);
    expect(init.stderr).toBe('');
    expect(init.stdout).toMatch(/storage s3: bucket annex at .* answers/);
    // No secret stays in the repository: git-annex's cached copy is removed.
    const credsDir = path.join(user.dir, '.git/annex/creds');
    expect(existsSync(credsDir) ? readdirSync(credsDir) : []).toEqual([]);
    user.write({ 'shout/spec.yml': SPEC });
    await user.save('pipeline');
    await pushData(0, 6);

    clone = path.join(root, 'daemon-clone');
    await git(root, 'clone', '-q', origin, clone);
    await git(clone, 'annex', 'init', '-q', 'daemon');
    const creds = path.join(root, 's3.env');
    writeFileSync(creds, `# the lab's MinIO\nAWS_ACCESS_KEY_ID=${S3_CREDENTIALS.AWS_ACCESS_KEY_ID}\nAWS_SECRET_ACCESS_KEY=${S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
    const config = path.join(root, 'minipach.yml');
    writeFileSync(
      config,
      `datasets:\n  - path: ${clone}\n    remote: origin\n    storage: {remote: s3, credentials_file: ${creds}}\n    minio: [{bucket: vd-main, path: uploads}]\n` +
        `minio: {endpoint: "${s3.endpoint}", access_key: S3RVER, secret_key: S3RVER}\nsecrets: {minio: tok-123}\npoll_seconds: 1\nworkers: 0\n`,
    );
    // The daemon gets no credentials from its environment: only from the file its configuration names.
    daemon = await startDaemon(clone, ['--config', config]);
    cleanups.push(() => daemon.stop());
    for (let i = 0; i < 2; i++) {
      const state = mkdtempSync(path.join(os.tmpdir(), 'minipach-worker-'));
      cleanups.push(() => execa('rm', ['-rf', state]));
      workerState.push(state);
      // Each worker: its own directory, the queue, the origin's URL, the bucket's credentials; nothing else.
      const w = spawnMinipach(['worker', '--redis', daemon.redisUrl, '--state', state, '--lock-ms', '3000', '--concurrency', '2', '--batch-size', '2'], { cwd: state, env: S3_CREDENTIALS });
      await w.waitFor(/taking jobs/);
      workers.push(w);
      cleanups.push(() => w.stop());
    }
  }, 120_000);

  it('every result is in the bucket and nowhere else, and a fresh clone gets everything from it', async () => {
    await waitIdle(daemon.url, 120_000);
    const outputs = await annexedOutputs(origin, 'shout');
    expect(Object.keys(outputs).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `shout/s${i}/upper.txt`));
    const keys = Object.values(outputs);
    for (const k of keys) expect(await inBucket(s3.client, BUCKET, k)).toBe(true);
    // On no other machine: not the origin (git only), not the daemon's clone, not the workers.
    expect(objectsIn(origin, keys)).toEqual([]);
    expect(objectsIn(path.join(clone, '.git/annex/objects'), keys)).toEqual([]);
    for (const s of workerState) expect(objectsIn(s, keys)).toEqual([]);
    // Both workers took part.
    expect(workers.every((w) => /: done$/m.test(w.output()))).toBe(true);

    const fresh = path.join(root, 'fresh');
    await git(root, 'clone', '-q', origin, fresh);
    // A loopback bucket must be allowed before `git annex init` enables it (autoenable).
    await git(fresh, 'config', 'annex.security.allowed-ip-addresses', '127.0.0.1');
    await git(fresh, 'annex', 'init', '-q', 'fresh');
    const got = await execa('datalad', ['get', 'shout', 'raw'], { cwd: fresh, env: S3ENV, reject: false, all: true });
    expect(got.exitCode, got.all).toBe(0);
    for (let i = 0; i < 6; i++) expect((await git(fresh, 'show', `HEAD:shout/s${i}/upper.txt`).catch(() => undefined))?.stdout ?? '').toMatch(/^\.\.\/\.\.\/\.git\/annex\/objects\//);
    for (let i = 0; i < 6; i++) expect(readFileSync(path.join(fresh, `shout/s${i}/upper.txt`), 'utf8')).toBe(`SUBJECT ${i}\n`);
    // The safe-linking rule's count: the bucket is a place to get the content from; a copy only in a
    // repository that is not a remote of the daemon's clone (a worker's, a laptop's) is not.
    const annex = new Annex(clone);
    const copies = await annex.reachableCopies(keys);
    for (const k of keys) expect(copies.get(k)).toBe(1);
    await git(clone, 'annex', 'setpresentkey', keys[0]!, '5a3c1e0e-0000-4000-8000-000000000001', '1');
    await git(clone, 'annex', 'setpresentkey', keys[0]!, (await git(clone, 'config', 'remote.s3.annex-uuid')).stdout.trim(), '0');
    expect((await annex.reachableCopies([keys[0]!])).get(keys[0]!)).toBe(0);
    await git(clone, 'annex', 'setpresentkey', keys[0]!, (await git(clone, 'config', 'remote.s3.annex-uuid')).stdout.trim(), '1');
  }, 180_000);

  it('the bucket going away mid-run loses nothing and commits nothing without its content', async () => {
    const before = Object.keys(await annexedOutputs(origin, 'shout')).length;
    await pushData(6, 30);
    // Down as soon as the workers are at it, for a few seconds.
    const started = Date.now();
    while (!workers.some((w) => /shout\/s(?:[6-9]|[12]\d): try/.test(w.output())) && Date.now() - started < 60_000) await new Promise((r) => setTimeout(r, 100));
    await s3.down();
    const downAt = Date.now();
    const doneAtDown = Object.keys(await annexedOutputs(origin, 'shout')).length;
    // While it is down, whatever reaches the branch has its content in the bucket (checked behind the relay).
    while (Date.now() - downAt < 6000) {
      for (const k of Object.values(await annexedOutputs(origin, 'shout'))) expect(await inBucket(s3.client, BUCKET, k)).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
    }
    await s3.up();
    await waitIdle(daemon.url, 180_000);
    const outputs = await annexedOutputs(origin, 'shout');
    expect(Object.keys(outputs).length).toBe(30);
    expect(before).toBe(6);
    for (const k of Object.values(outputs)) expect(await inBucket(s3.client, BUCKET, k)).toBe(true);
    // Each datum committed once.
    const subjects = await runCommits(origin, branch);
    expect(subjects.length).toBe(30);
    expect(new Set(subjects).size).toBe(30);
    // The daemon's clone is consistent, and knows where every result is.
    await git(clone, 'fsck', '--no-progress', '--strict');
    await git(clone, 'fetch', '-q', 'origin');
    const keys = Object.values(outputs);
    const whereis = (await execa('git', ['annex', 'whereis', '--json', '--batch-keys'], { cwd: clone, env: S3ENV, input: keys.join('\n') + '\n' })).stdout.split('\n').filter(Boolean);
    expect(whereis.length).toBe(30);
    for (const line of whereis) expect((JSON.parse(line) as { whereis: { description: string }[] }).whereis.map((w) => w.description)).toContain('[s3]');
    // The outage came mid-run, and the workers' results waited for the bucket (no try failed for it).
    expect(doneAtDown).toBeLessThan(30);
    expect(workers.map((w) => w.output()).join('')).toMatch(/storage "s3": cannot reach the bucket .*ECONNREFUSED.*result\(s\) wait for it/);
    expect(workers.map((w) => w.output()).join('')).not.toMatch(/: try 2 /);
  }, 300_000);

  it('wrong or missing credentials get a clear error', async () => {
    const wrong = await user.minipachWith({ AWS_ACCESS_KEY_ID: 'NOT-A-KEY', AWS_SECRET_ACCESS_KEY: 'x' }, 'storage', 'check', '--name', 's3');
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toMatch(/storage "s3": the bucket \(bucket annex at http:\/\/127\.0\.0\.1:\d+\) refused the credentials: InvalidAccessKeyId/);
    expect(wrong.stderr).not.toContain('NOT-A-KEY');
    const missing = await execa('node', [path.join(import.meta.dirname, '../../bin/minipach.js'), 'storage', 'check'], { cwd: user.dir, env: { ...ENV, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' }, reject: false });
    expect(missing.stderr).toMatch(/no S3 credentials .*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    const ok = await user.minipachWith(S3_CREDENTIALS, 'storage', 'check');
    expect(ok.stdout).toMatch(/answers/);
    await s3.down();
    const away = await user.minipachWith(S3_CREDENTIALS, 'storage', 'check');
    await s3.up();
    expect(away.stderr).toMatch(/cannot reach the bucket .*ECONNREFUSED/);
    const unknown = await user.minipachWith(S3_CREDENTIALS, 'storage', 'check', '--name', 'nope');
    expect(unknown.stderr).toMatch(/no S3 special remote named "nope".*minipach storage init/);
  }, 60_000);

  it('an object uploaded to MinIO lands in the same bucket as annexed content, and the daemon keeps no copy', async () => {
    const content = 'newmtl tile\nKd 0.8 0.8 0.8\n';
    await s3.client.putObject('vd-main', 'Tile_+002_+002.mtl', Buffer.from(content));
    const r = await fetch(`${daemon.url}/hooks/minio`, { method: 'POST', body: new Uint8Array(readFileSync(path.join(FIXTURES, 'minio/put.json'))), headers: { 'content-type': 'application/json', authorization: 'Bearer tok-123' } });
    expect(r.status).toBe(202);
    let uploaded: Record<string, string> = {};
    for (const end = Date.now() + 60_000; !Object.keys(uploaded).length && Date.now() < end; await new Promise((res) => setTimeout(res, 300))) {
      uploaded = await treeKeys(origin, branch, 'uploads').catch(() => ({}));
    }
    const key = uploaded['uploads/Tile_+002_+002.mtl']!;
    expect(key).toMatch(/^MD5E-s\d+--/);
    expect(await inBucket(s3.client, BUCKET, key)).toBe(true);
    expect(objectsIn(path.join(clone, '.git/annex/objects'), [key])).toEqual([]);
    // A clone finds it in the bucket: the daemon pushed the git-annex branch that says so.
    const fresh = path.join(root, 'fresh');
    await git(fresh, 'fetch', '-q', 'origin');
    await git(fresh, 'merge', '-q', '--ff-only', `origin/${branch}`);
    await git(fresh, 'annex', 'get', '-q', 'uploads');
    expect(readFileSync(path.join(fresh, 'uploads/Tile_+002_+002.mtl'), 'utf8')).toBe(content);
  }, 90_000);
});
