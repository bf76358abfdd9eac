/**
 * What webhook senders send, checked and turned into minipach's events. Pure: raw bodies and headers in,
 * events or a typed refusal out; the server answers, the event processor acts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { normalizeDatasetPath, ZERO_OID } from '../core/tree.js';
import type { RefUpdate } from './spool.js';

export class WebhookError extends Error {
  constructor(readonly status: 400 | 401 | 404, message: string) {
    super(message);
  }
}

export type Headers = Readonly<Record<string, string | string[] | undefined>>;
const header = (h: Headers, name: string) => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/** Compares secrets in constant time. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  // timingSafeEqual needs equal lengths; comparing against itself keeps the time independent of where they differ.
  return x.length === y.length ? timingSafeEqual(x, y) : (timingSafeEqual(x, x), false);
}

/**
 * Gitea signs the raw body with HMAC-SHA256 as bare hex in `X-Gitea-Signature`, and `sha256=<hex>` in
 * `X-Hub-Signature-256`; Forgejo adds `X-Forgejo-Signature`. Every signature present must match.
 */
export function verifyGiteaSignature(raw: Buffer, headers: Headers, secret: string): void {
  const want = createHmac('sha256', secret).update(raw).digest('hex');
  const given = [
    header(headers, 'x-gitea-signature'),
    header(headers, 'x-forgejo-signature'),
    header(headers, 'x-hub-signature-256')?.replace(/^sha256=/, ''),
  ].filter((s): s is string => Boolean(s));
  if (!given.length) throw new WebhookError(401, 'no signature: expected X-Gitea-Signature, X-Hub-Signature-256 or X-Forgejo-Signature (is the webhook secret set in Gitea?)');
  if (!given.every((g) => safeEqual(g.toLowerCase(), want))) throw new WebhookError(401, 'signature does not match the body (is the same secret set here and in Gitea?)');
}

export interface GiteaRepository {
  readonly full_name: string;
  readonly clone_url?: string;
  readonly ssh_url?: string;
}

export interface GiteaEvent {
  readonly kind: 'push' | 'create' | 'delete';
  readonly repository: GiteaRepository;
  readonly update: RefUpdate;
}


/** A Gitea/Forgejo push, create or delete body (JSON already parsed), as a ref update. */
export function parseGiteaEvent(eventHeader: string | undefined, body: unknown): GiteaEvent | undefined {
  if (!body || typeof body !== 'object') throw new WebhookError(400, 'the body is not a JSON object');
  const b = body as Record<string, unknown>;
  const repo = b['repository'] as GiteaRepository | undefined;
  if (!repo || typeof repo.full_name !== 'string') throw new WebhookError(400, 'no repository.full_name in the body');
  const kind = eventHeader ?? (b['ref_type'] ? (b['after'] === undefined && b['pusher_type'] ? 'delete' : 'create') : 'push');
  const ref = b['ref'];
  if (typeof ref !== 'string' || !ref) throw new WebhookError(400, 'no ref in the body');
  if (kind === 'push') {
    const after = b['after'];
    if (typeof after !== 'string' || !/^[0-9a-f]{40,64}$/.test(after)) throw new WebhookError(400, 'a push needs "after" (a commit id)');
    return { kind, repository: repo, update: { ref, before: typeof b['before'] === 'string' ? b['before'] : undefined, after } };
  }
  if (kind === 'create' || kind === 'delete') {
    // create/delete name the ref without refs/heads/ and carry no commit; only branches matter here.
    if (b['ref_type'] !== 'branch') return undefined;
    const full = ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
    return { kind, repository: repo, update: { ref: full, after: kind === 'delete' ? ZERO_OID : '' } };
  }
  return undefined;
}

/** The secret an Authorization header carries: `Bearer <token>`, or the password of HTTP Basic. */
export function credentialOf(authorization: string | undefined): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  if (bearer) return bearer[1]!.trim();
  const basic = /^Basic\s+(.+)$/i.exec(authorization ?? '');
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!.trim(), 'base64').toString('utf8');
  return decoded.includes(':') ? decoded.slice(decoded.indexOf(':') + 1) : undefined;
}

export function verifyBearer(authorization: string | undefined, token: string, where = 'set auth_token of the MinIO webhook target'): void {
  const given = /^Bearer\s+/i.test(authorization ?? '') ? credentialOf(authorization) : undefined;
  if (given === undefined) throw new WebhookError(401, `no "Authorization: Bearer <token>" header (${where})`);
  if (!safeEqual(given, token)) throw new WebhookError(401, 'wrong bearer token');
}

export interface ObjectChange {
  readonly op: 'put' | 'delete';
  readonly bucket: string;
  /** Decoded object key. */
  readonly key: string;
  readonly size?: number;
  readonly etag?: string;
}

/**
 * `Records[]` of a MinIO webhook body. Keys there are URL-query-escaped (`+` is a space, `%2B` a plus);
 * the listenBucketNotification stream's are not (`escaped: false`).
 */
export function parseMinioRecords(body: unknown, escaped = true): ObjectChange[] {
  const records = (body as { Records?: unknown } | null)?.Records;
  if (!Array.isArray(records)) throw new WebhookError(400, 'no Records array in the body');
  return records.flatMap((r: { eventName?: string; s3?: { bucket?: { name?: string }; object?: { key?: string; size?: number; eTag?: string } } }) => {
    const name = r.eventName ?? '';
    const op = name.startsWith('s3:ObjectCreated:') ? 'put' : name.startsWith('s3:ObjectRemoved:') ? 'delete' : undefined;
    const bucket = r.s3?.bucket?.name;
    const rawKey = r.s3?.object?.key;
    if (!op || !bucket || typeof rawKey !== 'string') return [];
    let key: string;
    try {
      key = escaped ? decodeURIComponent(rawKey.replace(/\+/g, ' ')) : rawKey;
    } catch {
      throw new WebhookError(400, `object key "${rawKey}" is not valid URL escaping`);
    }
    return [{ op, bucket, key, size: r.s3?.object?.size, etag: r.s3?.object?.eTag }];
  });
}

export interface BucketMapping {
  readonly bucket: string;
  /** Only keys under this prefix are taken. @defaultValue "" (the whole bucket) */
  readonly prefix: string;
  /** Dataset-relative directory the prefix maps to. */
  readonly path: string;
}

/** Where an object goes in a dataset, or why it is refused (outside every prefix, `..`, absolute, ...). */
export function objectPath(mappings: readonly BucketMapping[], bucket: string, key: string): { path: string } | { refused: string } {
  const m = mappings.find((x) => x.bucket === bucket && key.startsWith(x.prefix));
  if (!m) return { refused: `s3://${bucket}/${key} is outside every configured bucket/prefix` };
  const rel = key.slice(m.prefix.length);
  if (key.startsWith('/') || rel.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '.') || rel.includes('\\') || rel.includes('\0')) {
    return { refused: `s3://${bucket}/${key}: an object key with "..", "." or an absolute path is never written into a dataset` };
  }
  const p = normalizeDatasetPath(`${m.path}/${rel}`);
  if (!p || !rel || p.split('/').includes('.git')) return { refused: `s3://${bucket}/${key} does not name a file inside the dataset` };
  return { path: p };
}
