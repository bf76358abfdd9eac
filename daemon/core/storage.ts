/**
 * Storage that is not shared: a git-annex special remote of type S3 (MinIO, Ceph, AWS) that carries the
 * content of a dataset's files between workers, Slurm tasks and clones, while git objects go to the git
 * origin. This module is the pure part: what git-annex recorded about the remote (its `remote.log` line),
 * where a key lives in the bucket, credentials files, and what an S3 failure means for a datum.
 */
import { MinipachError } from './errors.js';

/** The special remote as `git annex initremote` recorded it in the git-annex branch (`remote.log`). */
export interface StorageRemote {
  readonly uuid: string;
  readonly name: string;
  readonly bucket: string;
  /** Host name or address of the S3 endpoint. @defaultValue s3.amazonaws.com (git-annex's) */
  readonly host: string;
  readonly port?: number;
  readonly protocol: 'http' | 'https';
  /** Path-style requests (MinIO, s3rver) rather than virtual-host style (AWS). */
  readonly pathStyle: boolean;
  /** Prepended to every key: the object of key K is `<fileprefix>K`. */
  readonly filePrefix: string;
  readonly region: string;
}

/** S3 credentials, as git-annex reads them from the environment. */
export interface StorageCredentials {
  readonly accessKey: string;
  readonly secretKey: string;
}

/** The environment variables git-annex's S3 remote (and every AWS tool) reads credentials from. */
export const ACCESS_KEY_ENV = 'AWS_ACCESS_KEY_ID';
export const SECRET_KEY_ENV = 'AWS_SECRET_ACCESS_KEY';

/** What went wrong with the bucket, which decides what happens to a datum: wait for it, or fail. */
export type StorageProblem = 'unreachable' | 'credentials' | 'denied' | 'full' | 'no-bucket' | 'not-set-up';

export class StorageError extends MinipachError {
  override name = 'StorageError';
  constructor(
    /** The special remote's name. */
    readonly remote: string,
    readonly problem: StorageProblem,
    detail: string,
    readonly hint?: string,
  ) {
    super(`storage "${remote}": ${detail}${hint ? ` (${hint})` : ''}`);
  }

  /** A bucket that is away or full may come back: wait and retry. Wrong credentials or a denial will not fix themselves. */
  get transient(): boolean {
    return this.problem === 'unreachable' || this.problem === 'full';
  }
}

/**
 * The special remotes of `remote.log` (one line per remote: `<uuid> key=value ...`, the latest line of a
 * uuid wins; a `timestamp=` field is git-annex's own). Only S3 remotes are returned.
 */
export function parseRemoteLog(text: string): StorageRemote[] {
  const byUuid = new Map<string, Record<string, string>>();
  for (const line of text.split('\n')) {
    const [uuid, ...fields] = line.trim().split(/\s+/);
    if (!uuid || !fields.length) continue;
    byUuid.set(uuid, Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)])));
  }
  return [...byUuid].flatMap(([uuid, c]) => {
    if (c['type'] !== 'S3' || !c['name'] || !c['bucket']) return [];
    const datacenter = c['datacenter'] ?? 'US';
    return [
      {
        uuid,
        name: c['name'],
        bucket: c['bucket'],
        host: c['host'] ?? 's3.amazonaws.com',
        port: c['port'] ? Number(c['port']) : undefined,
        protocol: c['protocol'] === 'http' ? 'http' : 'https',
        pathStyle: c['requeststyle'] === 'path',
        filePrefix: c['fileprefix'] ?? '',
        // git-annex's "US" is AWS's us-east-1; other datacenters are region names already.
        region: datacenter === 'US' ? 'us-east-1' : datacenter,
      } satisfies StorageRemote,
    ];
  });
}

/** The object holding a key's content in the bucket (unencrypted remotes: the key itself, after the prefix). */
export const objectName = (remote: StorageRemote, key: string): string => `${remote.filePrefix}${key}`;

/** The size a key records (`-s<bytes>`), if it records one. */
export function keySize(key: string): number | undefined {
  const m = /^[A-Z0-9]+-s(\d+)/.exec(key);
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads a credentials file: lines `AWS_ACCESS_KEY_ID=...` and `AWS_SECRET_ACCESS_KEY=...` (an env file, as
 * docker and systemd take them; `#` comments and blank lines allowed). Errors name the file and line, never
 * the secret.
 */
export function parseCredentialsFile(text: string, file: string): StorageCredentials {
  const values = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new MinipachError(`${file}:${i + 1}: not a NAME=value line (expected ${ACCESS_KEY_ENV}=... and ${SECRET_KEY_ENV}=...)`);
    values.set(m[1]!, m[2]!.replace(/^(['"])(.*)\1$/, '$2'));
  });
  const accessKey = values.get(ACCESS_KEY_ENV);
  const secretKey = values.get(SECRET_KEY_ENV);
  const missing = [!accessKey && ACCESS_KEY_ENV, !secretKey && SECRET_KEY_ENV].filter(Boolean);
  if (missing.length) throw new MinipachError(`${file}: ${missing.join(' and ')} missing`);
  return { accessKey: accessKey!, secretKey: secretKey! };
}

/** Credentials from the environment, if both variables are set. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): StorageCredentials | undefined {
  const accessKey = env[ACCESS_KEY_ENV];
  const secretKey = env[SECRET_KEY_ENV];
  return accessKey && secretKey ? { accessKey, secretKey } : undefined;
}

/**
 * What an S3 client's or git-annex's failure means. `code` is the S3 error code or the socket error code;
 * `message` the words that came with it (kept when nothing better is known).
 */
export function storageProblem(remote: StorageRemote | string, code: string | undefined, message: string): StorageError {
  const name = typeof remote === 'string' ? remote : remote.name;
  const where = typeof remote === 'string' ? '' : ` (bucket ${remote.bucket} at ${remote.protocol}://${remote.host}${remote.port ? `:${remote.port}` : ''})`;
  const text = `${code ?? ''} ${message}`;
  if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|socket hang up|ConnectionFailure|Connection refused|timed out|ServiceUnavailable|SlowDown|InternalError/i.test(text)) {
    return new StorageError(name, 'unreachable', `cannot reach the bucket${where}: ${code ?? message}`, 'datums that need it wait and are retried when it is back');
  }
  if (/InvalidAccessKeyId|SignatureDoesNotMatch|Set both AWS_ACCESS_KEY_ID|InvalidToken|ExpiredToken/i.test(text)) {
    return new StorageError(name, 'credentials', `the bucket${where} refused the credentials: ${code ?? message}`, `check ${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV}, or the storage credentials_file`);
  }
  if (/QuotaExceeded|StorageFull|XMinioStorageFull|EntityTooLarge|No space left|InsufficientStorage/i.test(text)) {
    return new StorageError(name, 'full', `the bucket${where} is full: ${code ?? message}`, 'free space or raise its quota; datums wait and are retried');
  }
  if (/NoSuchBucket/i.test(text)) {
    return new StorageError(name, 'no-bucket', `the bucket${where} does not exist`, 'create it, or run minipach storage init again');
  }
  if (/AccessDenied|Forbidden|AllAccessDisabled|403/i.test(text)) {
    return new StorageError(name, 'denied', `the bucket${where} denied access: ${code ?? message}`, 'the credentials need read and write access to the bucket');
  }
  return new StorageError(name, 'unreachable', `the bucket${where} failed: ${[code, message].filter(Boolean).join(': ')}`);
}

/**
 * Whether an address is one git-annex refuses to contact unless `annex.security.allowed-ip-addresses`
 * names it (loopback, private and link-local ranges): a MinIO on this machine or a compose network.
 */
export function isPrivateAddress(ip: string): boolean {
  const v4 = ip.replace(/^::ffff:/, '');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(v4)) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  const v6 = ip.toLowerCase();
  return v6 === '::1' || v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe80');
}
