/**
 * The daemon's configuration: the datasets it serves, Redis, HTTP and webhook secrets. Read from a YAML or
 * JSON file, validated against CONFIG_SCHEMA (an error names the key), then overridden by environment
 * variables (ENV_OVERRIDES), so a container can be configured without a file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { lazyValidator, yaml } from '../core/lazy-parsers.js';
import { normalizeDatasetPath } from '../core/tree.js';
import { UsageError } from '../core/errors.js';
import type { MinioConnection } from '../sources/minio-ingest.js';
import type { BucketMapping } from '../sources/webhooks.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_SLURM, EXECUTORS, type ExecutorName, type SlurmSettings } from '../exec/executors.js';

export interface DatasetConfig {
  /** A short name: job ids and API calls use it. @defaultValue the directory's name */
  readonly name: string;
  /** The daemon's own clone (absolute). */
  readonly path: string;
  /** Branches whose results it computes. @defaultValue the checked-out branch */
  readonly branches?: readonly string[];
  /** A git remote of the clone to fetch from and push results to. */
  readonly remote?: string;
  /** How its datums' commands run: native (a datalad run record without datalad run), datalad, or slurm. @defaultValue "native" */
  readonly executor: ExecutorName;
  /** Pipelines whose datums run otherwise than `executor` (e.g. only the heavy one on Slurm). */
  readonly pipelineExecutors: Readonly<Record<string, ExecutorName>>;
  /** The Gitea/Forgejo repository (`owner/name`) whose webhooks are about this dataset. */
  readonly repository?: string;
  /** Buckets (and key prefixes) whose objects become files under `path` of this dataset. */
  readonly minio: readonly BucketMapping[];
  /**
   * The S3 special remote that holds the dataset's content (set up with `minipach storage init`): workers
   * and Slurm tasks get inputs from it and put results in it; the daemon only checks that they are there.
   * Credentials: `credentials_file` (lines AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=...) or the
   * environment's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. @defaultValue none (content goes to the origin)
   */
  readonly storage?: { readonly remote: string; readonly credentialsFile?: string };
}

export interface DaemonConfig {
  readonly datasets: readonly DatasetConfig[];
  /** Redis URL (`redis://`, `rediss://`, `unix:///path`). Unset: a private redis-server is started. */
  readonly redisUrl?: string;
  /** Prefix of every BullMQ key in Redis. @defaultValue "minipach" */
  readonly queuePrefix: string;
  readonly http: {
    readonly host: string;
    readonly port: number;
    /**
     * The API token: every request to `/api`, `/queues` and `/metrics` must carry it
     * (`Authorization: Bearer <token>`, or HTTP Basic with it as the password). Required to listen beyond
     * loopback. @defaultValue none (loopback only, open to local users)
     */
    readonly token?: string;
  };
  /** Embedded Redis, spool and registration live here. @defaultValue `<first dataset's git dir>/minipach/daemon` */
  readonly stateDir?: string;
  /** Workers run inside the daemon process (0: only external `minipach worker`s). @defaultValue 1 */
  readonly workers: number;
  /** Batches (native) or datums (datalad) each in-process worker runs at once. @defaultValue 1 */
  readonly concurrency: number;
  /** The most datums of one native batch of an in-process worker. @defaultValue 50 */
  readonly batchSize: number;
  /** How long a batch's first datum waits for others, in milliseconds. @defaultValue 50 */
  readonly batchWaitMs: number;
  /** Seconds between fetches of datasets that have a remote (0: only on events). @defaultValue 0 */
  readonly pollSeconds: number;
  /** Webhook secrets: Gitea's HMAC key, MinIO's bearer token, the bearer token of `POST /hooks/git`. */
  readonly secrets: { readonly gitea?: string; readonly minio?: string; readonly git?: string };
  /** Where bucket objects are downloaded from (MinIO, or any S3-compatible server). */
  readonly minio?: MinioConnection;
  /** How the daemon's workers run datums of datasets with `executor: slurm` (exec/slurm.ts). */
  readonly slurm: SlurmSettings;
}

/** A configuration that cannot be used: a usage error (exit 2), naming the file and key. */
export class ConfigError extends UsageError {
  override name = 'ConfigError';
  constructor(readonly file: string, readonly key: string, problem: string) {
    super(`${file}: ${key ? `${key}: ` : ''}${problem}`);
  }
}

export const CONFIG_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  required: ['datasets'],
  properties: {
    datasets: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
          path: { type: 'string', minLength: 1 },
          branches: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
          remote: { type: 'string', minLength: 1 },
          repository: { type: 'string', pattern: '^[^/\\s]+/[^/\\s]+$' },
          executor: { enum: [...EXECUTORS] },
          pipelines: {
            type: 'object',
            additionalProperties: { type: 'object', additionalProperties: false, properties: { executor: { enum: [...EXECUTORS] } } },
          },
          storage: {
            type: 'object',
            additionalProperties: false,
            required: ['remote'],
            properties: { remote: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' }, credentials_file: { type: 'string', minLength: 1 } },
          },
          minio: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['bucket', 'path'],
              properties: { bucket: { type: 'string', minLength: 1 }, prefix: { type: 'string' }, path: { type: 'string', minLength: 1 } },
            },
          },
        },
      },
    },
    redis: { type: 'object', additionalProperties: false, properties: { url: { type: 'string' } } },
    queue_prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
    http: {
      type: 'object',
      additionalProperties: false,
      properties: { host: { type: 'string' }, port: { type: 'integer', minimum: 0, maximum: 65535 }, token: { type: 'string', minLength: 16 } },
    },
    state_dir: { type: 'string' },
    workers: { type: 'integer', minimum: 0 },
    concurrency: { type: 'integer', minimum: 1 },
    batch_size: { type: 'integer', minimum: 1 },
    batch_wait_ms: { type: 'integer', minimum: 0 },
    poll_seconds: { type: 'number', minimum: 0 },
    minio: {
      type: 'object',
      additionalProperties: false,
      required: ['endpoint', 'access_key', 'secret_key'],
      properties: { endpoint: { type: 'string', pattern: '^https?://' }, access_key: { type: 'string' }, secret_key: { type: 'string' }, region: { type: 'string' } },
    },
    secrets: {
      type: 'object',
      additionalProperties: false,
      properties: { gitea: { type: 'string', minLength: 1 }, minio: { type: 'string', minLength: 1 }, git: { type: 'string', minLength: 1 } },
    },
    slurm: {
      type: 'object',
      additionalProperties: false,
      properties: {
        batch_size: { type: 'integer', minimum: 1 },
        max_running: { type: 'integer', minimum: 1 },
        max_array: { type: 'integer', minimum: 1 },
        max_queued: { type: 'integer', minimum: 1 },
        shared_fs: { type: 'boolean' },
        sbatch: { type: 'string', minLength: 1 },
        squeue: { type: 'string', minLength: 1 },
        scancel: { type: 'string', minLength: 1 },
        minipach: { type: 'array', items: { type: 'string' }, minItems: 1 },
        output: { type: 'string', minLength: 1 },
        heartbeat_ms: { type: 'integer', minimum: 1000 },
      },
    },
  },
} as const;

/** Environment variable -> config key (dotted). Read after the file, so they win. */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  REDIS_URL: 'redis.url',
  MINIPACH_REDIS_URL: 'redis.url',
  MINIPACH_QUEUE_PREFIX: 'queue_prefix',
  MINIPACH_HTTP_HOST: 'http.host',
  MINIPACH_HTTP_PORT: 'http.port',
  MINIPACH_API_TOKEN: 'http.token',
  MINIPACH_STATE_DIR: 'state_dir',
  MINIPACH_WORKERS: 'workers',
  MINIPACH_CONCURRENCY: 'concurrency',
  MINIPACH_BATCH_SIZE: 'batch_size',
  MINIPACH_POLL_SECONDS: 'poll_seconds',
  MINIPACH_GITEA_SECRET: 'secrets.gitea',
  MINIPACH_MINIO_TOKEN: 'secrets.minio',
  MINIPACH_GIT_SECRET: 'secrets.git',
  MINIPACH_MINIO_ENDPOINT: 'minio.endpoint',
  MINIPACH_MINIO_ACCESS_KEY: 'minio.access_key',
  MINIPACH_MINIO_SECRET_KEY: 'minio.secret_key',
};

const NUMERIC = new Set(['http.port', 'workers', 'concurrency', 'poll_seconds', 'batch_size']);

const configSchema = lazyValidator('config', CONFIG_SCHEMA);

/**
 * Builds the configuration from a file's text (or none: `raw` from the command line) and the environment.
 * Relative dataset paths are resolved against the file's directory.
 */
export function parseConfig(file: string, raw: unknown, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const obj: Record<string, unknown> = raw && typeof raw === 'object' ? structuredClone(raw as Record<string, unknown>) : {};
  for (const [name, key] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    setDotted(obj, key, NUMERIC.has(key) ? numberOr(v, name) : v);
  }
  const validate = configSchema();
  if (!validate(obj)) {
    const e = validate.errors![0]!;
    const key = [...e.instancePath.split('/').filter(Boolean), ...(e.keyword === 'additionalProperties' ? [String(e.params['additionalProperty'])] : [])]
      .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i ? `.${p}` : p))
      .join('');
    const problem = e.keyword === 'additionalProperties' ? `unknown key (known: ${Object.keys(schemaAt(e.schemaPath)).join(', ')})` : e.message ?? 'invalid';
    throw new ConfigError(file, key, problem);
  }
  const base = path.dirname(path.resolve(file));
  const seen = new Set<string>();
  const datasets = (obj['datasets'] as Record<string, unknown>[]).map((d, i) => {
    const p = path.resolve(base, d['path'] as string);
    const name = (d['name'] as string | undefined) ?? path.basename(p).replace(/[^A-Za-z0-9_-]/g, '-');
    if (seen.has(name)) throw new ConfigError(file, `datasets[${i}].name`, `"${name}" is used twice; give each dataset its own name`);
    seen.add(name);
    const minio = ((d['minio'] as { bucket: string; prefix?: string; path: string }[] | undefined) ?? []).map((m, j) => {
      const target = normalizeDatasetPath(m.path);
      if (!target) throw new ConfigError(file, `datasets[${i}].minio[${j}].path`, `"${m.path}" must be a directory inside the dataset (relative, without "..")`);
      return { bucket: m.bucket, prefix: m.prefix ?? '', path: target };
    });
    const executor = (d['executor'] as ExecutorName | undefined) ?? 'native';
    const pipelineExecutors = Object.fromEntries(Object.entries((d['pipelines'] as Record<string, { executor?: ExecutorName }> | undefined) ?? {}).flatMap(([k, v]) => (v.executor ? [[k, v.executor]] : [])));
    const st = d['storage'] as { remote: string; credentials_file?: string } | undefined;
    const storage = st && { remote: st.remote, ...(st.credentials_file ? { credentialsFile: path.resolve(base, st.credentials_file) } : {}) };
    return { name, path: p, branches: d['branches'] as string[] | undefined, remote: d['remote'] as string | undefined, repository: d['repository'] as string | undefined, executor, pipelineExecutors, minio, storage };
  });
  // git-annex reads S3 credentials from the environment: one set per daemon (and its workers).
  const files = [...new Set(datasets.flatMap((d) => (d.storage?.credentialsFile ? [d.storage.credentialsFile] : [])))];
  if (files.length > 1) throw new ConfigError(file, 'datasets[].storage.credentials_file', `names ${files.length} different files; a daemon uses one set of S3 credentials (one account may hold every bucket)`);
  const http = (obj['http'] as { host?: string; port?: number; token?: string } | undefined) ?? {};
  const secrets = (obj['secrets'] as { gitea?: string; minio?: string; git?: string } | undefined) ?? {};
  const m = obj['minio'] as { endpoint: string; access_key: string; secret_key: string; region?: string } | undefined;
  return {
    datasets,
    redisUrl: (obj['redis'] as { url?: string } | undefined)?.url,
    queuePrefix: (obj['queue_prefix'] as string | undefined) ?? 'minipach',
    http: { host: http.host ?? '127.0.0.1', port: http.port ?? 8177, token: http.token },
    stateDir: obj['state_dir'] ? path.resolve(base, obj['state_dir'] as string) : undefined,
    workers: (obj['workers'] as number | undefined) ?? 1,
    concurrency: (obj['concurrency'] as number | undefined) ?? 1,
    batchSize: (obj['batch_size'] as number | undefined) ?? DEFAULT_BATCH_SIZE,
    batchWaitMs: (obj['batch_wait_ms'] as number | undefined) ?? 50,
    pollSeconds: (obj['poll_seconds'] as number | undefined) ?? 0,
    secrets,
    minio: m && { endpoint: m.endpoint, accessKey: m.access_key, secretKey: m.secret_key, region: m.region },
    slurm: slurmSettings(obj['slurm'] as Record<string, unknown> | undefined),
  };
}

function slurmSettings(raw: Record<string, unknown> = {}): SlurmSettings {
  const n = (k: string) => raw[k] as number | undefined;
  const s = (k: string) => raw[k] as string | undefined;
  return {
    batchSize: n('batch_size') ?? DEFAULT_SLURM.batchSize,
    ...(n('max_running') ? { maxRunning: n('max_running') } : {}),
    maxArray: n('max_array') ?? DEFAULT_SLURM.maxArray,
    maxQueued: n('max_queued') ?? DEFAULT_SLURM.maxQueued,
    sharedFs: (raw['shared_fs'] as boolean | undefined) ?? false,
    clients: { sbatch: s('sbatch'), squeue: s('squeue'), scancel: s('scancel') },
    ...(raw['minipach'] ? { minipach: raw['minipach'] as string[] } : {}),
    ...(s('output') ? { output: s('output') } : {}),
    ...(n('heartbeat_ms') ? { heartbeatMs: n('heartbeat_ms') } : {}),
  };
}

/** Whether an address is this machine's loopback (a daemon there is reachable by local users only). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::ffff:127.0.0.1';
}

/**
 * Refuses a configuration that would expose the API without a token: beyond loopback anybody who reaches
 * the port could schedule work and read logs.
 */
export function checkExposure(config: DaemonConfig, file = 'configuration'): void {
  if (!isLoopback(config.http.host) && !config.http.token) {
    throw new ConfigError(file, 'http.token', `the daemon would listen on ${config.http.host}, beyond loopback, without an API token; set http.token (or MINIPACH_API_TOKEN) to a secret of 16 characters or more, or listen on 127.0.0.1`);
  }
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<DaemonConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = yaml().parse(text);
  } catch (e) {
    throw new ConfigError(file, '', `is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseConfig(file, raw, env);
}

function setDotted(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] && typeof o[p] === 'object' ? o[p] : (o[p] = {})) as Record<string, unknown>;
  o[parts[parts.length - 1]!] = value;
}

function numberOr(v: string, name: string): number | string {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`environment ${name}`, name, `"${v}" is not a number`);
  return n;
}

function schemaAt(schemaPath: string): Record<string, unknown> {
  let s: unknown = CONFIG_SCHEMA;
  for (const p of schemaPath.replace(/^#\//, '').split('/').slice(0, -1)) s = (s as Record<string, unknown>)[p];
  return ((s as { properties?: Record<string, unknown> }).properties ?? {}) as Record<string, unknown>;
}
