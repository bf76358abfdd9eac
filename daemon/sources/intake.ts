/**
 * Events that arrive over HTTP (the git endpoint, Gitea/Forgejo and MinIO webhooks): checked, routed to
 * the datasets they are about, and stored durably in the daemon's spool before they are acknowledged. The
 * HTTP server only translates requests into these calls and their answers into responses.
 */
import path from 'node:path';
import type { PathChange } from './minio-ingest.js';
import { parseHookEvent, writeSpool, type GitEvent, type RefUpdate } from './spool.js';
import { objectPath, parseGiteaEvent, parseMinioRecords, verifyBearer, verifyGiteaSignature, WebhookError, type BucketMapping, type Headers } from './webhooks.js';

/** A branch the daemon serves, as events name it. */
export interface EventTarget {
  /** The dataset's name in the daemon's config. */
  readonly dataset: string;
  readonly dir: string;
  readonly gitDir: string;
  /** Remote URL (or clone path) workers use: how webhooks name it. */
  readonly origin: string;
  /** The Gitea/Forgejo repository (`owner/name`) configured for the dataset. */
  readonly repository?: string;
  readonly minio: readonly BucketMapping[];
}

/** Remembers event identities, to drop a replayed webhook delivery (queue/sightings.ts). */
export interface SightingStore {
  first(identity: string): Promise<boolean>;
  forget(identity: string): Promise<void>;
}

export interface IntakeOptions {
  readonly targets: readonly EventTarget[];
  readonly spoolDir: string;
  readonly sightings: SightingStore;
  readonly secrets: { readonly gitea?: string; readonly minio?: string; readonly git?: string };
  readonly warn: (msg: string, fields: Record<string, unknown>) => void;
}

/** The answer to an event: an HTTP status and a JSON body. */
export interface IntakeAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

const json = (buf: Buffer): unknown => {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new WebhookError(400, `the body is not valid JSON (${(e as Error).message})`);
  }
};

const unique = (xs: readonly string[]) => [...new Set(xs)];

export class EventIntake {
  constructor(private readonly o: IntakeOptions) {}

  /** The datasets a repository is about (by `repository:` in the config, or by remote URL or path). */
  datasetsOf(repo: { full_name?: string; clone_url?: string; ssh_url?: string; path?: string }): string[] {
    const byConfig = repo.full_name ? this.o.targets.filter((t) => t.repository === repo.full_name) : [];
    if (byConfig.length) return unique(byConfig.map((t) => t.dataset));
    const strip = (u: string) => u.replace(/\/+$/, '').replace(/\.git$/, '');
    const matching = this.o.targets.filter((t) => {
      const origin = strip(t.origin);
      return (
        (repo.full_name && origin.endsWith(`/${repo.full_name}`)) ||
        [repo.clone_url, repo.ssh_url, repo.path].some((u) => u && (strip(u) === origin || path.resolve(u) === t.dir || path.resolve(u) === t.gitDir))
      );
    });
    return unique(matching.map((t) => t.dataset));
  }

  /** `{"repo": <path or URL>, "dataset": <name>?, "updates": [{"ref", "before"?, "after"}]}` or a hook's stdin lines. */
  async git(body: Buffer, headers: Headers, repoQuery: string): Promise<IntakeAnswer> {
    if (this.o.secrets.git) verifyBearer(headers['authorization'] as string | undefined, this.o.secrets.git, 'this daemon has secrets.git set: send it as a bearer token');
    const contentType = (headers['content-type'] as string | undefined) ?? '';
    let ev: GitEvent & { dataset?: string };
    if (contentType.includes('json')) {
      const b = json(body) as { repo?: string; dataset?: string; updates?: RefUpdate[] };
      if (!Array.isArray(b.updates) || !b.updates.every((u) => typeof u?.ref === 'string' && typeof u.after === 'string')) {
        throw new WebhookError(400, 'expected {"repo": "...", "updates": [{"ref": "refs/heads/main", "before": "<sha>", "after": "<sha>"}]}');
      }
      ev = { kind: 'git', repo: b.repo ?? '', updates: b.updates, dataset: b.dataset };
    } else {
      // The post-receive format: "<old> <new> <ref>" lines, with ?repo= naming the repository.
      ev = parseHookEvent(`post-receive\n${repoQuery}\n${body.toString('utf8')}`);
    }
    const datasets = ev.dataset ? unique(this.o.targets.filter((t) => t.dataset === ev.dataset).map((t) => t.dataset)) : this.datasetsOf({ path: ev.repo, clone_url: ev.repo });
    if (!datasets.length) throw new WebhookError(404, `unknown repository "${ev.dataset ?? ev.repo}": no dataset of this daemon has it as its clone or remote`);
    for (const dataset of datasets) await writeSpool(this.o.spoolDir, { ...ev, dataset });
    return { status: 202, body: { stored: true, datasets } };
  }

  async gitea(body: Buffer, headers: Headers): Promise<IntakeAnswer> {
    if (this.o.secrets.gitea) verifyGiteaSignature(body, headers, this.o.secrets.gitea);
    const eventHeader = (headers['x-gitea-event'] ?? headers['x-forgejo-event'] ?? headers['x-gogs-event'] ?? headers['x-github-event']) as string | undefined;
    const ev = parseGiteaEvent(eventHeader, json(body));
    if (!ev) return { status: 202, body: { stored: false, reason: `event "${eventHeader}" is not about a branch; ignored` } };
    const datasets = this.datasetsOf(ev.repository);
    if (!datasets.length) throw new WebhookError(404, `unknown repository "${ev.repository.full_name}": no dataset has repository: ${ev.repository.full_name} or a remote at ${ev.repository.clone_url ?? '?'}`);
    const identity = `gitea\0${ev.repository.full_name}\0${ev.update.ref}\0${ev.kind === 'delete' ? 'deleted' : ev.update.after}`;
    if (!(await this.o.sightings.first(identity))) return { status: 202, body: { stored: false, duplicate: true } };
    try {
      for (const dataset of datasets) {
        await writeSpool(this.o.spoolDir, { kind: 'git', repo: ev.repository.full_name, dataset, updates: [ev.update], source: ev.kind, via: 'gitea', delivery: headers['x-gitea-delivery'] });
      }
    } catch (e) {
      // Not stored: a redelivery must not be mistaken for a duplicate.
      await this.o.sightings.forget(identity);
      throw e;
    }
    return { status: 202, body: { stored: true, event: ev.kind, ref: ev.update.ref, after: ev.update.after, datasets } };
  }

  async minio(body: Buffer, headers: Headers): Promise<IntakeAnswer> {
    if (this.o.secrets.minio) verifyBearer(headers['authorization'] as string | undefined, this.o.secrets.minio);
    const accepted = new Map<string, PathChange[]>();
    const refused: string[] = [];
    const datasets = new Map(this.o.targets.map((t) => [t.dataset, t.minio]));
    for (const c of parseMinioRecords(json(body))) {
      const verdicts = [...datasets].map(([dataset, mappings]) => [dataset, objectPath(mappings, c.bucket, c.key)] as const);
      const placed = verdicts.filter((v): v is readonly [string, { path: string }] => 'path' in v[1]);
      for (const [dataset, where] of placed) accepted.set(dataset, [...(accepted.get(dataset) ?? []), { op: c.op, bucket: c.bucket, key: c.key, path: where.path }]);
      if (placed.length) continue;
      // Refused, and still a 2xx: MinIO would otherwise redeliver it forever. The most specific reason wins.
      const reasons = verdicts.map(([, w]) => ('refused' in w ? w.refused : ''));
      const reason = reasons.find((r) => r && !r.includes('outside every')) ?? `s3://${c.bucket}/${c.key} is outside every configured bucket/prefix`;
      refused.push(reason);
      this.o.warn('object refused', { bucket: c.bucket, key: c.key, reason });
    }
    for (const [dataset, changes] of accepted) await writeSpool(this.o.spoolDir, { kind: 'objects', dataset, changes });
    return { status: accepted.size ? 202 : 200, body: { stored: [...accepted.values()].flat().length, refused } };
  }
}
