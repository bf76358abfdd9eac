/**
 * `plan --json` kept for what it was computed from, so asking again with nothing changed costs reading a
 * file: no snapshot, no index, no planning. The plan is a pure function of the commit (files, specs,
 * containers), the result index (the results refs, the failures file), where content is (the git-annex
 * branches) and the clone's configuration (remotes, `minipach.cpuHourCost`); the memo's key is a hash of
 * exactly those, with minipach's version. Anything else changing makes a new key, and the plan is computed.
 *
 * Only a cache, two files per branch: the body (the plan's JSON as written out) and a head naming its key, its
 * length and its sha256, written after the body. A body that does not match its head is deleted and never
 * trusted (a crash between the two renames leaves exactly that). Deleting them changes nothing but time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dataset } from './dataset.js';
import { VERSION } from './install-dir.js';
import { TextWriter } from './text-file.js';

// 2: plans kept before stop 25 may hold keys of unlocked files read with their pointer's newline.
// 3: new datums' markers go to the shard directories (core/identity.ts markerPath).
const FORMAT = 'minipach-plan-memo/3';

/** The refs a plan reads besides the branch: results (shared ones too), run refs, git-annex branches. */
const READ_REFS = ['refs/minipach/', 'refs/remotes/', 'refs/heads/git-annex'];

/**
 * A key of what a plan of the branch is read from, as the kept plan's key is, but without the refs that only
 * carry work in progress (run refs, Slurm reports, imports): those change with every hand-in while the plan
 * at the head does not. The daemon's dashboard keeps its plan while this key holds.
 */
export async function planStateKey(ds: Dataset): Promise<string> {
  return (await stateKey(ds, ['refs/minipach/results', 'refs/minipach/remotes/', 'refs/remotes/', 'refs/heads/git-annex'], null)).key;
}

/** A hash of the branch's head, the refs under `prefixes`, the failures file, the clone's config and `options`; and the head. */
async function stateKey(ds: Dataset, prefixes: readonly string[], options: unknown): Promise<{ key: string; head: string | undefined }> {
  const [listed, failures, config] = await Promise.all([
    ds.repo.refs([ds.ref, ...prefixes]),
    readFile(path.join(ds.stateDir, 'failures.json')).catch(() => Buffer.alloc(0)),
    readFile(path.join(ds.gitDir, 'config')).catch(() => Buffer.alloc(0)),
  ]);
  const refs = listed.map((r) => `${r.ref} ${r.commit}`).join('\n');
  const h = createHash('sha256').update(`${FORMAT}\0${VERSION}\0${JSON.stringify(options)}\0${refs}\0`);
  return { key: h.update(failures).update('\0').update(config).digest('hex'), head: listed.find((r) => r.ref === ds.ref)?.commit };
}

export class PlanMemo {
  private readonly body: string;
  private readonly head: string;

  constructor(private readonly ds: Dataset) {
    const base = path.join(ds.stateDir, 'plan-memo', ds.branch.replace(/\//g, '_'));
    this.body = `${base}.json`;
    this.head = `${base}.head`;
  }

  /**
   * The key of a plan of the branch as it is now, with `options` (whatever else shapes the output), and the
   * branch's head it was read at: the plan kept under this key must be the plan of that head.
   */
  key(options: unknown): Promise<{ key: string; head: string | undefined }> {
    return stateKey(this.ds, READ_REFS, options);
  }

  /**
   * Writes the memo's body to `out` when it holds a plan for `key` and is intact (its sha256 is checked
   * before a byte goes out), and returns what was kept beside it; undefined otherwise (a damaged memo is deleted).
   */
  async replay(key: string, out: NodeJS.WritableStream): Promise<{ meta: Record<string, unknown> } | undefined> {
    const head = await this.readHead();
    if (!head || head.key !== key) return undefined;
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of createReadStream(this.body)) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    } catch {
      size = -1;
    }
    if (size !== head.length || hash.digest('hex') !== head.sha256) {
      await this.forget();
      return undefined;
    }
    for await (const chunk of createReadStream(this.body)) {
      if (!out.write(chunk as Buffer)) await new Promise<void>((resolve) => out.once('drain', resolve));
    }
    return { meta: head.meta };
  }

  /** A writer that keeps the pieces of a plan as they are written out; `commit` puts them in place. */
  async recorder(key: string): Promise<{ write(piece: string): Promise<void>; commit(meta: Record<string, unknown>): Promise<void>; abandon(): Promise<void> }> {
    await mkdir(path.dirname(this.body), { recursive: true });
    const tmp = `${this.body}.${randomBytes(4).toString('hex')}.tmp`;
    const file = await open(tmp, 'w');
    const hash = createHash('sha256');
    // The plan is tens of megabytes: see text-file.ts.
    const writer = new TextWriter(file, hash);
    return {
      write: (piece) => writer.write(piece),
      commit: async (meta) => {
        await file.close();
        await rm(this.head, { force: true });
        await rename(tmp, this.body);
        const headTmp = `${tmp}.head`;
        await writeFile(headTmp, JSON.stringify({ format: FORMAT, key, length: writer.length, sha256: hash.digest('hex'), meta }));
        await rename(headTmp, this.head);
      },
      abandon: async () => {
        await file.close().catch(() => undefined);
        await rm(tmp, { force: true });
      },
    };
  }

  private async readHead(): Promise<{ key: string; length: number; sha256: string; meta: Record<string, unknown> } | undefined> {
    const text = await readFile(this.head, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const h = JSON.parse(text) as { format?: string; key?: string; length?: number; sha256?: string; meta?: Record<string, unknown> };
      if (h.format === FORMAT && h.key && typeof h.length === 'number' && h.sha256) return { key: h.key, length: h.length, sha256: h.sha256, meta: h.meta ?? {} };
    } catch {
      /* damaged: forgotten below */
    }
    await this.forget();
    return undefined;
  }

  private async forget(): Promise<void> {
    await Promise.all([rm(this.head, { force: true }), rm(this.body, { force: true })]);
  }
}
