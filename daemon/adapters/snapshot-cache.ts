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
    if (!/^[0-9a-f]{40,64}$/.test(commit)) return undefined;
    const file = this.file(commit);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    // Damaged (the reason is in `entries`): dropped, and the commit is read from git again.
    const entries = decode(commit, text);
    if (typeof entries === 'string') {
      await rm(file, { force: true });
      return undefined;
    }
    // Most recently used first when a base for a new commit is looked for.
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
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
    const body = JSON.stringify(entries.map((e): Row => [e.path, e.mode, e.oid, e.annexKey ?? null]));
    const header: Header = { format: FORMAT, commit, count: entries.length, sha256: sha256(body) };
    await this.writeAtomically(`${commit}.snapshot`, `${JSON.stringify(header)}\n${body}`);
    for (const old of (await this.listed()).slice(KEEP)) {
      await rm(this.file(old.commit), { force: true });
      await rm(path.join(this.dir, `${old.commit}.keys`), { force: true });
    }
  }

  /** The datum keys a plan of `commit` left (see core/key-memo.ts), or undefined (none, or damaged: dropped). */
  async loadKeys(commit: string): Promise<Map<string, MemoPipeline> | undefined> {
    const file = path.join(this.dir, `${commit}.keys`);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    const body = checkedBody(commit, text);
    let memo: Map<string, MemoPipeline> | undefined;
    try {
      if (body !== undefined) memo = new Map((JSON.parse(body) as [string, string, [string, string, string, string?][]][]).map(([name, signature, rows]) => [name, { signature, datums: new Map(rows.map(([d, inputs, key, marker]) => [d, marker ? { inputs, key, marker } : { inputs, key }])) }]));
    } catch {
      memo = undefined;
    }
    if (!memo) await rm(file, { force: true });
    return memo;
  }

  async saveKeys(commit: string, memo: ReadonlyMap<string, MemoPipeline>): Promise<void> {
    const body = JSON.stringify([...memo].map(([name, m]) => [name, m.signature, [...m.datums].map(([d, { inputs, key, marker }]) => (marker ? [d, inputs, key, marker] : [d, inputs, key]))]));
    await this.writeAtomically(`${commit}.keys`, `${JSON.stringify({ format: FORMAT, commit, count: memo.size, sha256: sha256(body) })}\n${body}`);
  }

  private async writeAtomically(name: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // Written aside and renamed: a reader never sees half a file.
    const tmp = path.join(this.dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(tmp, text);
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

/** The header and body of a cache file whose header names this format and commit and whose checksum matches. */
function checked(commit: string, text: string): { header: Header; body: string } | undefined {
  const nl = text.indexOf('\n');
  if (nl < 0) return undefined;
  try {
    const header = JSON.parse(text.slice(0, nl)) as Header;
    const body = text.slice(nl + 1);
    return header.format === FORMAT && header.commit === commit && sha256(body) === header.sha256 ? { header, body } : undefined;
  } catch {
    return undefined;
  }
}

const checkedBody = (commit: string, text: string): string | undefined => checked(commit, text)?.body;

/** The entries of a cache file, or why it cannot be trusted. */
function decode(commit: string, text: string): TreeEntry[] | string {
  const file = checked(commit, text);
  if (!file) return 'its header or checksum does not match';
  let rows: unknown;
  try {
    rows = JSON.parse(file.body);
  } catch (e) {
    return `it does not parse (${(e as Error).message})`;
  }
  if (!Array.isArray(rows) || rows.length !== file.header.count) return 'its entry count does not match';
  const entries: TreeEntry[] = [];
  for (const row of rows as unknown[]) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'string' || typeof row[2] !== 'string' || (row[3] !== null && typeof row[3] !== 'string')) return 'an entry is malformed';
    const [p, mode, oid, annexKey] = row as Row;
    entries.push(annexKey ? { path: p, mode, oid, contentKey: comparableAnnexKey(annexKey), annexKey } : { path: p, mode, oid, contentKey: gitContentKey(oid) });
  }
  return entries;
}
