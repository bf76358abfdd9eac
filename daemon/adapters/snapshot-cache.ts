/**
 * Snapshots kept between runs: one file per commit in the dataset's state directory, so a re-plan at the
 * same commit reads no git at all, and one at a new commit reads only what changed since a cached one.
 *
 * Only a cache. Each file carries its commit, its entry count and the sha256 of its body; a file that does
 * not match them, or does not parse, is deleted and the commit is read from git again. Deleting the
 * directory changes nothing but time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MemoPipeline } from '../core/key-memo.js';
import { MODE_GITLINK, treeEntry, type TreeEntry } from '../core/tree.js';
import { parseLsTree } from './git-format.js';

/**
 * 4: a snapshot is stored as its files as `git ls-tree -r -z` lists them (the listing a whole read got from
 * git, kept as it came, or written out for a snapshot made from a diff), then each file's annex key or '' in
 * the same order, each followed by a NUL (which no git path or key holds). The content keys are derived again
 * on load.
 */
const FORMAT = 'minipach-snapshot/4';

/** Snapshots kept: the last few commits planned (a re-plan, a branch and its base, a rebase). */
const KEEP = 3;

/** One pipeline of a key memo as stored: [name, signature, names, inputs, keys, markers] (its columns). */
type KeysRow = [string, string, string[], string[], string[], string[]];

interface Header {
  readonly format: string;
  readonly commit: string;
  readonly count: number;
  readonly sha256: string;
  /** A snapshot's: how many bytes of the body are the listing. */
  readonly listing?: number;
}

export interface CachedSnapshot {
  readonly commit: string;
  readonly entries: TreeEntry[];
}

export class SnapshotCache {
  constructor(readonly dir: string) {}

  private file(commit: string): string {
    return path.join(this.dir, `${commit}.snapshot`);
  }

  /** The cached entries of `commit`, or undefined (not cached, or damaged: then the file is gone). */
  async load(commit: string): Promise<TreeEntry[] | undefined> {
    const entries = await this.readChecked(`${commit}.snapshot`, commit, decodeEntries);
    // Most recently used first when a base for a new commit is looked for.
    const now = new Date();
    if (entries) await utimes(this.file(commit), now, now).catch(() => undefined);
    return entries;
  }

  /** The most recently used cached snapshot, to read a new commit as a diff from. */
  async latest(): Promise<CachedSnapshot | undefined> {
    for (const { commit } of await this.listed()) {
      const entries = await this.load(commit);
      if (entries) return { commit, entries };
    }
    return undefined;
  }

  /** Caches `entries` for `commit`, keeping the last few commits. */
  save(commit: string, entries: readonly TreeEntry[]): Promise<void> {
    const listing = Buffer.from(entries.map((e) => `${e.mode} ${e.mode === MODE_GITLINK ? 'commit' : 'blob'} ${e.oid}\t${e.path}\0`).join(''), 'utf8');
    return this.saveListing(commit, listing, entries.map((e) => e.annexKey));
  }

  /** Caches a commit read whole: git's listing of its files as it came, and their annex keys in its order. */
  async saveListing(commit: string, listing: Buffer, annexKeys: readonly (string | undefined)[]): Promise<void> {
    const keys = Buffer.from(annexKeys.map((k) => `${k ?? ''}\0`).join(''), 'utf8');
    await this.writeChecked(`${commit}.snapshot`, commit, [listing, keys], annexKeys.length, listing.length);
    for (const old of (await this.listed()).slice(KEEP)) {
      await rm(this.file(old.commit), { force: true });
      await rm(path.join(this.dir, `${old.commit}.keys`), { force: true });
    }
  }

  /** The datum keys a plan of `commit` left (see core/key-memo.ts), or undefined (none, or damaged: dropped). */
  loadKeys(commit: string): Promise<Map<string, MemoPipeline> | undefined> {
    return this.readChecked(`${commit}.keys`, commit, decodeKeys);
  }

  async saveKeys(commit: string, memo: ReadonlyMap<string, MemoPipeline>): Promise<void> {
    const rows = [...memo].map(([name, m]) => [name, m.signature, m.names, m.inputs, m.keys, m.markers]);
    await this.writeChecked(`${commit}.keys`, commit, [Buffer.from(JSON.stringify(rows), 'utf8')], rows.length);
  }

  /**
   * A cache file's body, decoded: only when its header names this format and commit, its checksum
   * matches, and the body decodes to `count` items. Anything else is dropped, and undefined returned.
   */
  private async readChecked<T>(name: string, commit: string, decode: (body: Buffer, header: Header) => T | undefined): Promise<T | undefined> {
    if (!/^[0-9a-f]{40,64}$/.test(commit)) return undefined;
    const file = path.join(this.dir, name);
    const bytes = await readFile(file).catch(() => undefined);
    if (bytes === undefined) return undefined;
    let decoded: T | undefined;
    try {
      const nl = bytes.indexOf(0x0a);
      const header = JSON.parse(bytes.subarray(0, nl).toString('utf8')) as Header;
      const body = bytes.subarray(nl + 1);
      if (nl > 0 && header.format === FORMAT && header.commit === commit && typeof header.count === 'number' && sha256(body) === header.sha256) {
        decoded = decode(body, header);
      }
    } catch {
      decoded = undefined;
    }
    if (decoded === undefined) await rm(file, { force: true });
    return decoded;
  }

  /** Writes a body under a header with its count of items and checksum; aside and renamed, so a reader never sees half a file. */
  private async writeChecked(name: string, commit: string, body: readonly Buffer[], count: number, listing?: number): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const hash = createHash('sha256');
    for (const b of body) hash.update(b);
    const header: Header = { format: FORMAT, commit, count, sha256: hash.digest('hex'), ...(listing !== undefined ? { listing } : {}) };
    const tmp = path.join(this.dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(tmp, [`${JSON.stringify(header)}\n`, ...body]);
    await rename(tmp, path.join(this.dir, name));
  }

  /** Cached commits, most recently used first. */
  private async listed(): Promise<{ commit: string; used: number }[]> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.snapshot'));
    const found = await Promise.all(names.map(async (n) => ({ commit: n.slice(0, -'.snapshot'.length), used: (await stat(path.join(this.dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
    return found.sort((a, b) => b.used - a.used);
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const strings = (x: unknown, n?: number): x is string[] => Array.isArray(x) && (n === undefined || x.length === n) && x.every((s) => typeof s === 'string');

/** A snapshot's body as entries, or undefined when it does not hold `count` of them. */
function decodeEntries(body: Buffer, header: Header): TreeEntry[] | undefined {
  if (typeof header.listing !== 'number' || header.listing > body.length) return undefined;
  const listed = parseLsTree(body.subarray(0, header.listing));
  const keys = body.toString('utf8', header.listing).split('\0');
  // Every key ends in a NUL: the split leaves one empty string after the last.
  if (listed.length !== header.count || keys.length !== header.count + 1 || keys[header.count] !== '') return undefined;
  const entries: TreeEntry[] = [];
  for (let i = 0; i < listed.length; i++) {
    const { path: p, mode, oid } = listed[i]!;
    // The checksum vouches for the bytes; these catch a body written wrong (cheaply: 10^5 entries).
    if (!p || mode.length !== 6 || (oid.length !== 40 && oid.length !== 64)) return undefined;
    entries.push(treeEntry(p, mode, oid, keys[i] || undefined));
  }
  return entries;
}

/** A key memo's rows (one per pipeline), or undefined when one is malformed. */
function decodeKeys(body: Buffer, header: Header): Map<string, MemoPipeline> | undefined {
  const rows: unknown = JSON.parse(body.toString('utf8'));
  if (!Array.isArray(rows) || rows.length !== header.count) return undefined;
  const memo = new Map<string, MemoPipeline>();
  for (const row of rows) {
    if (!Array.isArray(row) || row.length !== 6 || typeof row[0] !== 'string' || typeof row[1] !== 'string' || !strings(row[2])) return undefined;
    const [name, signature, names, inputs, keys, markers] = row as KeysRow;
    if (!strings(inputs, names.length) || !strings(keys, names.length) || !strings(markers, names.length)) return undefined;
    memo.set(name, new MemoPipeline(signature, names, inputs, keys, markers));
  }
  return memo;
}
