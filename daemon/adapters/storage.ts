/**
 * The dataset's content store, an S3 bucket behind a git-annex special remote. git-annex moves the content
 * (`initremote`, `enableremote`, `copy --to`, `get`); the `minio` client asks the bucket directly whether an
 * object is there, because `git annex checkpresentkey --batch` answers "0" alike for "not there" and "could
 * not ask", and minipach must tell a missing result from a bucket that is away.
 *
 * Credentials are read from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), where the daemon
 * or worker put them from its credentials file; git-annex's own copy of them (`.git/annex/creds/<uuid>`,
 * written by initremote/enableremote) is removed, so a secret lives only where the operator put it.
 */
import { lookup } from 'node:dns/promises';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client as MinioClient } from 'minio';
import type { Annex } from './annex.js';
import type { Dataset } from './dataset.js';
import { runUnchecked } from './process.js';
import { MinipachError } from '../core/errors.js';
import {
  ACCESS_KEY_ENV,
  credentialsFromEnv,
  isPrivateAddress,
  keySize,
  objectName,
  parseCredentialsFile,
  parseRemoteLog,
  SECRET_KEY_ENV,
  storageProblem,
  StorageError,
  type StorageCredentials,
  type StorageRemote,
} from '../core/storage.js';

/** How long work waits for a bucket that is away (or full) before it fails (MINIPACH_STORAGE_PATIENCE_MS). */
export const storagePatienceMs = (): number => Number(process.env['MINIPACH_STORAGE_PATIENCE_MS']) || 120_000;

/** How many objects are asked about at once. */
const PARALLEL_HEADS = 16;

/** Reads a credentials file named in a configuration and puts it where git-annex and the S3 client read it. */
export async function loadCredentialsFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new MinipachError(`the S3 credentials file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const c = parseCredentialsFile(text, file);
  env[ACCESS_KEY_ENV] = c.accessKey;
  env[SECRET_KEY_ENV] = c.secretKey;
}

function needCredentials(remote: string, env: NodeJS.ProcessEnv): StorageCredentials {
  const c = credentialsFromEnv(env);
  if (!c) {
    throw new StorageError(remote, 'credentials', `no S3 credentials`, `set ${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV} in the environment, or name a credentials_file under storage in the daemon's configuration (or --credentials)`);
  }
  return c;
}

/** The special remotes git-annex knows in this repository (its git-annex branch, merged with the remotes'). */
export async function storageRemotes(annex: Annex): Promise<StorageRemote[]> {
  // Merge what was fetched (a clone's refs/remotes/origin/git-annex) first: a remote set up elsewhere is there.
  await annex.mergeBranches();
  const r = await runUnchecked(['git', 'cat-file', 'blob', 'git-annex:remote.log'], { cwd: annex.dir });
  return r.exitCode === 0 ? parseRemoteLog(r.stdout) : [];
}

export interface InitStorageOptions {
  readonly name: string;
  readonly bucket: string;
  /** `http(s)://host[:port]` of the S3 endpoint. */
  readonly endpoint: string;
  /** AWS region (git-annex's `datacenter`). @defaultValue US */
  readonly region?: string;
  /** Path-style requests (MinIO). @defaultValue true */
  readonly pathStyle?: boolean;
  readonly filePrefix?: string;
}

/** A dataset's S3 store, as one repository (the daemon's clone, a worker's) uses it. */
export class Storage {
  private client?: Promise<MinioClient>;

  private constructor(readonly annex: Annex, readonly remote: StorageRemote, private readonly env: NodeJS.ProcessEnv) {}

  /** The special remote `name` of this repository, enabled here (set up with `minipach storage init`). */
  static async open(annex: Annex, name: string, env: NodeJS.ProcessEnv = process.env): Promise<Storage> {
    const remote = (await storageRemotes(annex)).find((r) => r.name === name);
    if (!remote) {
      throw new StorageError(name, 'not-set-up', `${annex.dir} has no S3 special remote named "${name}"`, `set it up once with: minipach storage init --name ${name} --bucket <bucket> --endpoint <url>, in the dataset, and push its git-annex branch`);
    }
    const s = new Storage(annex, remote, env);
    await s.enable();
    return s;
  }

  /** `git annex initremote` of an S3 remote, then a check that the bucket answers. */
  static async init(annex: Annex, o: InitStorageOptions, env: NodeJS.ProcessEnv = process.env): Promise<Storage> {
    needCredentials(o.name, env);
    const u = new URL(o.endpoint);
    if (!/^https?:$/.test(u.protocol)) throw new StorageError(o.name, 'not-set-up', `endpoint ${o.endpoint} is not an http(s) URL`);
    await allowAddressOf(annex, u.hostname);
    const params = [
      'type=S3',
      'encryption=none',
      `bucket=${o.bucket}`,
      `host=${u.hostname}`,
      ...(u.port ? [`port=${u.port}`] : []),
      `protocol=${u.protocol.slice(0, -1)}`,
      `requeststyle=${o.pathStyle === false ? 'domain' : 'path'}`,
      'signature=v4',
      `datacenter=${o.region ?? 'US'}`,
      ...(o.filePrefix ? [`fileprefix=${o.filePrefix}`] : []),
      // Clones (workers, Slurm tasks, colleagues) enable it on `git annex init`.
      'autoenable=true',
    ];
    const existing = (await storageRemotes(annex)).find((r) => r.name === o.name);
    const r = await runUnchecked(['git', 'annex', existing ? 'enableremote' : 'initremote', o.name, ...params], { cwd: annex.dir, env });
    if (r.exitCode !== 0) throw storageProblem(o.name, undefined, lastLines(r.stderr.trim() || r.stdout));
    const s = await Storage.open(annex, o.name, env);
    await s.check();
    return s;
  }

  get name(): string {
    return this.remote.name;
  }

  /**
   * Makes the remote usable here: git-annex may contact its address (it refuses loopback and private ones
   * unless told), the remote is enabled (a clone made before `autoenable`), and no credentials stay cached.
   */
  private async enable(): Promise<void> {
    await allowAddressOf(this.annex, this.remote.host);
    if ((await this.annex.repo.config(`remote.${this.remote.name}.annex-uuid`)) !== this.remote.uuid) {
      const r = await runUnchecked(['git', 'annex', 'enableremote', this.remote.name], { cwd: this.annex.dir, env: this.env });
      if (r.exitCode !== 0) throw storageProblem(this.remote, undefined, lastLines(r.stderr.trim() || r.stdout));
    }
    await this.forgetCachedCredentials();
  }

  private async forgetCachedCredentials(): Promise<void> {
    const common = await this.annex.repo.commonDir();
    await rm(path.join(common, 'annex', 'creds', this.remote.uuid), { force: true });
  }

  private s3(): Promise<MinioClient> {
    this.client ??= (async () => {
      const c = needCredentials(this.remote.name, this.env);
      const { Client } = await import('minio');
      const port = this.remote.port ?? (this.remote.protocol === 'https' ? 443 : 80);
      return new Client({ endPoint: this.remote.host, port, useSSL: this.remote.protocol === 'https', accessKey: c.accessKey, secretKey: c.secretKey, region: this.remote.region, pathStyle: this.remote.pathStyle });
    })();
    this.client.catch(() => (this.client = undefined));
    return this.client;
  }

  /** Throws a StorageError saying what is wrong when the bucket cannot be used with these credentials. */
  async check(): Promise<void> {
    const client = await this.s3();
    // A GET, not a HEAD: only a response with a body says why (wrong key id, bad signature, no bucket).
    try {
      const body = await client.getObject(this.remote.bucket, objectName(this.remote, 'minipach-probe'));
      body.destroy();
    } catch (e) {
      if ((e as { code?: string }).code !== 'NoSuchKey') throw this.problem(e);
    }
  }

  /**
   * Which keys' content is in the bucket, by asking the bucket (an object of the key's size). Throws a
   * StorageError when the bucket cannot answer: "missing" must mean missing, not "could not ask".
   */
  async inBucket(keys: readonly string[]): Promise<{ present: Set<string>; missing: string[] }> {
    const client = await this.s3();
    const present = new Set<string>();
    const missing: string[] = [];
    const queue = [...new Set(keys)];
    const one = async (): Promise<void> => {
      for (let key = queue.pop(); key !== undefined; key = queue.pop()) {
        try {
          const st = await client.statObject(this.remote.bucket, objectName(this.remote, key));
          const size = keySize(key);
          (size === undefined || st.size === size ? present.add(key) : missing.push(key));
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === 'NotFound' || code === 'NoSuchKey') missing.push(key);
          else throw this.problem(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_HEADS, queue.length) }, one));
    return { present, missing };
  }

  /** Records in the git-annex branch here that the bucket holds these keys (no transfer). */
  async recordPresent(keys: readonly string[]): Promise<void> {
    if (!keys.length) return;
    const r = await runUnchecked(['git', 'annex', 'setpresentkey', '--batch'], { cwd: this.annex.dir, input: keys.map((k) => `${k} ${this.remote.uuid} 1`).join('\n') + '\n' });
    if (r.exitCode !== 0) throw new StorageError(this.remote.name, 'not-set-up', `could not record content in the bucket in ${this.annex.dir}: ${lastLines(r.stderr)}`);
  }

  /** Copies keys' content to the bucket; a failure is a StorageError saying what went wrong. */
  async put(keys: readonly string[]): Promise<void> {
    needCredentials(this.remote.name, this.env);
    const r = await this.annex.copyKeysTo(this.remote.name, keys);
    if (r.ok) return;
    // git-annex's JSON often says only "failed": ask the bucket itself what is wrong.
    await this.check();
    throw storageProblem(this.remote, undefined, r.message);
  }

  /**
   * Runs `attempt` until it stops throwing a StorageError that may pass (bucket away or full), waiting
   * 1, 2, 4 ... 10 s between tries, for at most `STORAGE_PATIENCE_MS`: an outage of the storage is no
   * reason to fail a datum. `waiting` hears of the first such error.
   */
  async patiently<T>(attempt: () => Promise<T>, waiting?: (e: StorageError) => void): Promise<T> {
    const deadline = Date.now() + storagePatienceMs();
    for (let wait = 1000; ; wait = Math.min(wait * 2, 10_000)) {
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof StorageError) || !e.transient || Date.now() + wait > deadline) throw e;
        if (wait === 1000) waiting?.(e);
        await new Promise((res) => setTimeout(res, wait));
      }
    }
  }

  /** Drops keys' content from this repository (it is in the bucket: a worker keeps no copy of results). */
  async dropHere(keys: readonly string[]): Promise<void> {
    if (!keys.length) return;
    await runUnchecked(['git', 'annex', 'dropkey', '--force', '--batch'], { cwd: this.annex.dir, input: keys.join('\n') + '\n' });
  }

  private problem(e: unknown): StorageError {
    const err = e as { code?: string; message?: string; cause?: { code?: string } };
    return storageProblem(this.remote, err.code ?? err.cause?.code, err.message ?? String(e));
  }
}

/**
 * git-annex contacts only public addresses unless `annex.security.allowed-ip-addresses` lists others. A
 * bucket on this machine or a private network (a compose network) is allowed by its address, and only it.
 */
async function allowAddressOf(annex: Annex, host: string): Promise<void> {
  const addresses = await lookup(host, { all: true }).catch(() => []);
  const privateOnes = addresses.map((a) => a.address).filter(isPrivateAddress);
  if (!privateOnes.length) return;
  const current = (await annex.repo.config('annex.security.allowed-ip-addresses')) ?? '';
  if (current === 'all') return;
  const list = new Set(current.split(/\s+/).filter(Boolean));
  const before = list.size;
  for (const a of privateOnes) list.add(a);
  if (list.size !== before) await annex.repo.setConfig('annex.security.allowed-ip-addresses', [...list].join(' '));
}

const lastLines = (s: string) => s.trim().split('\n').slice(-3).join(' ').trim();

const opened = new WeakMap<Dataset, Promise<Storage>>();

/** The dataset's storage, opened (and enabled) once per Dataset; undefined when its content goes to the origin. */
export function storageOf(ds: Dataset): Promise<Storage> | undefined {
  if (!ds.storage) return undefined;
  let s = opened.get(ds);
  if (!s) {
    s = Storage.open(ds.annex, ds.storage);
    opened.set(ds, s);
    s.catch(() => opened.delete(ds));
  }
  return s;
}
