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
import { comparableAnnexKey, gitContentKey } from '../core/content-key.js';
import type { MemoPipeline } from '../core/key-memo.js';
import type { TreeEntry } from '../core/tree.js';

const FORMAT = 'minipach-snapshot/2';

/** Snapshots kept: the last few commits planned (a re-plan, a branch and its base, a rebase). */
const KEEP = 3;

/** One entry as stored: [path, mode, blob id, annex key or null]; the content key is derived again on load. */
type Row = [string, string, string, string | null];

/** One pipeline of a key memo as stored: [name, signature, [datum, inputs, key, marker?][]]. */
type KeysRow = [string, string, [string, string, string, string?][]];

interface Header {
  readonly format: string;
  readonly commit: string;
  readonly count: number;
  readonly sha256: string;
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

  /** Caches `entries` (sorted, as in a snapshot) for `commit`, keeping the last few commits. */
  async save(commit: string, entries: readonly TreeEntry[]): Promise<void> {
    await this.writeChecked(`${commit}.snapshot`, commit, entries.map((e): Row => [e.path, e.mode, e.oid, e.annexKey ?? null]));
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
    await this.writeChecked(`${commit}.keys`, commit, [...memo].map(([name, m]): KeysRow => [name, m.signature, [...m.datums].map(([d, { inputs, key, marker }]) => (marker ? [d, inputs, key, marker] : [d, inputs, key]))]));
  }

  /**
   * A cache file's rows, decoded: only when its header names this format and commit, its checksum and row
   * count match, and every row decodes. Anything else is dropped, and undefined returned.
   */
  private async readChecked<T>(name: string, commit: string, decode: (rows: unknown[]) => T | undefined): Promise<T | undefined> {
    if (!/^[0-9a-f]{40,64}$/.test(commit)) return undefined;
    const file = path.join(this.dir, name);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    let decoded: T | undefined;
    try {
      const nl = text.indexOf('\n');
      const header = JSON.parse(text.slice(0, nl)) as Header;
      const body = text.slice(nl + 1);
      if (nl > 0 && header.format === FORMAT && header.commit === commit && sha256(body) === header.sha256) {
        const rows: unknown = JSON.parse(body);
        if (Array.isArray(rows) && rows.length === header.count) decoded = decode(rows);
      }
    } catch {
      decoded = undefined;
    }
    if (decoded === undefined) await rm(file, { force: true });
    return decoded;
  }

  /** Writes rows under a header with their count and checksum; aside and renamed, so a reader never sees half a file. */
  private async writeChecked(name: string, commit: string, rows: readonly unknown[]): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const body = JSON.stringify(rows);
    const header: Header = { format: FORMAT, commit, count: rows.length, sha256: sha256(body) };
    const tmp = path.join(this.dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(tmp, `${JSON.stringify(header)}\n${body}`);
    await rename(tmp, path.join(this.dir, name));
  }

  /** Cached commits, most recently used first. */
  private async listed(): Promise<{ commit: string; used: number }[]> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.snapshot'));
    const found = await Promise.all(names.map(async (n) => ({ commit: n.slice(0, -'.snapshot'.length), used: (await stat(path.join(this.dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
    return found.sort((a, b) => b.used - a.used);
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A snapshot's rows as entries, or undefined when one is malformed. */
function decodeEntries(rows: unknown[]): TreeEntry[] | undefined {
  const entries: TreeEntry[] = [];
  for (const row of rows) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'string' || typeof row[2] !== 'string' || (row[3] !== null && typeof row[3] !== 'string')) return undefined;
    const [p, mode, oid, annexKey] = row as Row;
    entries.push(annexKey ? { path: p, mode, oid, contentKey: comparableAnnexKey(annexKey), annexKey } : { path: p, mode, oid, contentKey: gitContentKey(oid) });
  }
  return entries;
}

/** A key memo's rows (one per pipeline), or undefined when one is malformed. */
function decodeKeys(rows: unknown[]): Map<string, MemoPipeline> | undefined {
  const memo = new Map<string, MemoPipeline>();
  for (const row of rows) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'string' || !Array.isArray(row[2])) return undefined;
    const [name, signature, datums] = row as KeysRow;
    if (!datums.every((d) => Array.isArray(d) && d.length >= 3 && d.every((x) => typeof x === 'string'))) return undefined;
    memo.set(name, { signature, datums: new Map(datums.map(([d, inputs, key, marker]) => [d, marker ? { inputs, key, marker } : { inputs, key }])) });
  }
  return memo;
}
