/**
 * Objects from a bucket become annexed files of a dataset. The content is imported through the `minio`
 * client into the annex of the daemon's clone (`git annex setkey`), the file is committed with git plumbing
 * on the branch head (no checkout, the same compare-and-swap as the committer, retried when the branch
 * moved), and with a remote the content is copied there so workers can get it.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Client as MinioClient } from 'minio';
import type { IndexChange } from '../adapters/git.js';
import { publishBranch, syncBranch } from '../results/branch.js';
import { BranchMovedError, MinipachError } from '../core/errors.js';
import type { Dataset } from '../adapters/dataset.js';
import { storageOf } from '../adapters/storage.js';

export interface MinioConnection {
  /** `http://host:9000` */
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region?: string;
}

export interface PathChange {
  readonly op: 'put' | 'delete';
  readonly bucket: string;
  readonly key: string;
  /** Dataset-relative path (already checked by webhooks.objectPath). */
  readonly path: string;
}

export function minioClient(c: MinioConnection): MinioClient {
  const u = new URL(c.endpoint);
  return new MinioClient({
    endPoint: u.hostname,
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
    useSSL: u.protocol === 'https:',
    accessKey: c.accessKey,
    secretKey: c.secretKey,
    region: c.region,
    pathStyle: true,
  });
}

const MAX_MOVES = 20;

/**
 * Applies object changes to the branch as one commit. Returns the new head, or undefined when nothing
 * changed (an object deleted that was never added, or re-put with the same content).
 */
export async function ingestObjects(ds: Dataset, client: MinioClient, changes: readonly PathChange[]): Promise<string | undefined> {
  if (!changes.length) return undefined;
  const scratch = path.join(ds.stateDir, 'ingest');
  await mkdir(scratch, { recursive: true });
  const tmp = await mkdtemp(path.join(scratch, 'objects-'));
  try {
    // The last change of a path wins (a put then a delete of the same key is a delete).
    const last = new Map(changes.map((c) => [c.path, c]));
    const files = new Map<string, { key: string; target: (dir: string) => string }>();
    for (const c of last.values()) {
      if (c.op !== 'put') continue;
      // Named like the target: *E backends keep the extension in the key.
      const file = path.join(tmp, `${files.size}-${path.posix.basename(c.path)}`);
      try {
        await client.fGetObject(c.bucket, c.key, file);
      } catch (e) {
        // Gone again by now (deleted right after the put): a later delete event removes it.
        if ((e as { code?: string }).code === 'NoSuchKey') continue;
        throw new MinipachError(`could not download s3://${c.bucket}/${c.key}: ${(e as Error).message}`);
      }
      // The backend the dataset uses for that path (DataLad: MD5E), so equal content gets equal keys.
      const attr = await ds.repo.attribute('annex.backend', c.path);
      const { key, objectPath } = await ds.annex.store(file, attr !== 'unspecified' && attr !== 'unset' ? attr : undefined);
      files.set(c.path, { key, target: (dir) => path.posix.relative(dir, `.git/annex/objects/${objectPath}`) });
    }
    const keys = [...new Set([...files.values()].map((f) => f.key))];
    const storage = storageOf(ds);
    if (storage && files.size) {
      // Workers read inputs from the dataset's storage: the content goes there before the commit that names
      // it, and the daemon keeps no copy (the push of the branch takes the git-annex branch that says where).
      const s = await storage;
      await s.put(keys);
      await s.dropHere(keys);
    } else if (ds.remote && files.size) {
      // Workers read inputs from the remote: the content goes there before the commit that names it.
      const r = await ds.annex.copyKeysTo(ds.remote, keys);
      if (!r.ok) throw new MinipachError(`could not copy imported objects to ${ds.remote}: ${r.message}`);
    }
    for (let moves = 0; ; moves++) {
      await syncBranch(ds);
      const head = (await ds.repo.resolve(ds.ref))!;
      const existing = new Map((await ds.repo.lsTree(head, [...last.keys()])).map((e) => [e.path, e.oid]));
      const changesToIndex: IndexChange[] = [];
      for (const c of last.values()) {
        const f = files.get(c.path);
        if (f) {
          const oid = await ds.repo.writeBlob(f.target(path.posix.dirname(c.path)));
          if (existing.get(c.path) !== oid) changesToIndex.push({ path: c.path, mode: '120000', oid });
        } else if (c.op === 'delete' && existing.has(c.path)) changesToIndex.push({ path: c.path });
      }
      if (!changesToIndex.length) return undefined;
      const summary = [...last.values()].map((c) => `${c.op === 'put' ? 'add' : 'remove'} ${c.path} (s3://${c.bucket}/${c.key})`);
      const message = `[minipach] import ${changesToIndex.length} object change(s) from MinIO\n\n${summary.join('\n')}\n`;
      const tip = await ds.repo.commitChanges(head, changesToIndex, message);
      try {
        await publishBranch(ds, tip, head, 'minipach: import objects');
        return tip;
      } catch (e) {
        if (e instanceof BranchMovedError && moves < MAX_MOVES) continue;
        throw e;
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
