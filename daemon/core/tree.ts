/**
 * A tree snapshot: every file of one commit with its content key, read once in bulk (see adapters/snapshot-reader.ts) and
 * then queried in memory by the planner. Paths are dataset-relative, '/'-separated, sorted.
 */

import { comparableAnnexKey, gitContentKey } from './content-key.js';

export const MODE_SYMLINK = '120000';
export const MODE_GITLINK = '160000';
/** git's all-zero object id: "no commit" in ref updates, hooks and webhooks (a deletion or a creation). */
export const ZERO_OID = '0000000000000000000000000000000000000000';

/** Whether an id is git's all-zero id (any length: some sources abbreviate it). */
export const isZeroOid = (oid: string): boolean => /^0+$/.test(oid);

export interface SubdatasetRef {
  readonly path: string;
  readonly commit: string;
}

export interface TreeEntry {
  /** Dataset-relative path, e.g. `raw/sub-01/T1.nii.gz`. */
  readonly path: string;
  /** Git mode: 100644, 100755, 120000 (symlink, e.g. an annexed file) or 160000 (subdataset). */
  readonly mode: string;
  /** Git object id of the blob (or commit, for a subdataset). */
  readonly oid: string;
  /** Content identity used in datum keys: an annex key without backend extension, or `GIT-<oid>`. */
  readonly contentKey: string;
  /** The full annex key when the file is annexed (symlink or unlocked pointer file). */
  readonly annexKey?: string;
  /** The subdatasets holding this entry, outermost first, each at its recorded commit (absent at top level). */
  readonly subdatasets?: readonly SubdatasetRef[];
}

/**
 * A file's entry as a snapshot holds it (10^5 of them): a file in git keys its content by blob id, an
 * annexed file by its annex key; the latter's content key is derived when asked, not kept beside the key.
 */
export function treeEntry(path: string, mode: string, oid: string, annexKey: string | undefined, subdatasets?: readonly SubdatasetRef[]): TreeEntry {
  const entry: TreeEntry = annexKey ? new AnnexedEntry(path, mode, oid, annexKey) : { path, mode, oid, contentKey: gitContentKey(oid) };
  return subdatasets ? { ...plainEntry(entry), subdatasets } : entry;
}

class AnnexedEntry implements TreeEntry {
  constructor(
    readonly path: string,
    readonly mode: string,
    readonly oid: string,
    readonly annexKey: string,
  ) {}

  get contentKey(): string {
    return comparableAnnexKey(this.annexKey);
  }

  /** As JSON (a datum's files travel in job data and batch files), with the derived key: getters are not own properties. */
  toJSON(): TreeEntry {
    return plainEntry(this);
  }
}

/** An entry as a plain object (its derived fields too), to copy or serialise. */
export function plainEntry(e: TreeEntry): TreeEntry {
  return e.annexKey ? { path: e.path, mode: e.mode, oid: e.oid, contentKey: e.contentKey, annexKey: e.annexKey } : { path: e.path, mode: e.mode, oid: e.oid, contentKey: e.contentKey };
}

export interface TreeSnapshot {
  readonly commit: string;
  /** Sorted by path. */
  readonly entries: readonly TreeEntry[];
  /** An entry by its path (a binary search: no map of 10^5 paths is built for the few looked up). */
  readonly byPath: { get(path: string): TreeEntry | undefined; has(path: string): boolean };
}

export function makeSnapshot(commit: string, entries: TreeEntry[]): TreeSnapshot {
  const sorted = isSorted(entries) ? entries : [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const get = (p: string): TreeEntry | undefined => {
    const e = sorted[lowerBound(sorted, p)];
    return e?.path === p ? e : undefined;
  };
  return { commit, entries: sorted, byPath: { get, has: (p) => get(p) !== undefined } };
}

function isSorted(entries: readonly TreeEntry[]): boolean {
  for (let i = 1; i < entries.length; i++) if (!(entries[i - 1]!.path < entries[i]!.path)) return false;
  return true;
}

/** First index whose path is >= `p` (binary search over the sorted entries). */
function lowerBound(entries: readonly TreeEntry[], p: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.path < p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The entries at or below `dir` (the file `dir` itself, or everything under `dir/`). `''` means the whole
 * tree. Runs in O(log n + k) on the sorted snapshot.
 */
export function entriesUnder(snapshot: TreeSnapshot, dir: string): TreeEntry[] {
  if (dir === '') return [...snapshot.entries];
  const out: TreeEntry[] = [];
  const at = lowerBound(snapshot.entries, dir);
  if (snapshot.entries[at]?.path === dir) out.push(snapshot.entries[at]!);
  const prefix = dir + '/';
  for (let i = lowerBound(snapshot.entries, prefix); i < snapshot.entries.length; i++) {
    const e = snapshot.entries[i]!;
    if (!e.path.startsWith(prefix)) break;
    out.push(e);
  }
  return out;
}

/** `a/b` is at or below `a`; `''` contains everything. */
export function isAtOrBelow(path: string, dir: string): boolean {
  // Without building `dir + '/'`: this is asked for every datum and file of a plan.
  return dir === '' || path === dir || (path.length > dir.length && path.charCodeAt(dir.length) === 0x2f && path.startsWith(dir));
}

/** Joins dataset-relative path parts, skipping empty ones. */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

/**
 * Normalizes a user-given dataset-relative path, or returns undefined if it is absolute or leaves the dataset.
 * Accepts `./a/b/`, returns `a/b`. `.` and `` become ``.
 */
export function normalizeDatasetPath(p: string): string | undefined {
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0')) return undefined;
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return undefined;
    parts.push(seg);
  }
  return parts.join('/');
}

/**
 * The fewest directories that cover every one of `paths` and hold none of `writable`: for each path, its
 * highest ancestor (below the root) that neither holds nor lies in a writable path, else the path itself.
 * A batch's inputs (`raw/s1` ... `raw/s50`) become one read-only mount (`raw`) instead of fifty.
 */
export function coveringDirs(paths: readonly string[], writable: readonly string[]): string[] {
  const clear = (q: string) => !writable.some((w) => isAtOrBelow(w, q) || isAtOrBelow(q, w));
  const chosen = new Set<string>();
  for (const p of paths) {
    let q = p;
    for (let i = p.indexOf('/'); ; i = p.indexOf('/', i + 1)) {
      const candidate = i < 0 ? p : p.slice(0, i);
      if (clear(candidate)) {
        q = candidate;
        break;
      }
      if (i < 0) break;
    }
    chosen.add(q);
  }
  const all = [...chosen].sort();
  return all.filter((p) => !all.some((q) => q !== p && isAtOrBelow(p, q)));
}

/**
 * Paths, each with a value, to ask which of them overlap a given path (lie at, above or below it) in
 * O(depth + log n + hits) instead of a scan. With several overlapping, the one added first wins, as a
 * scan in insertion order would find it.
 */
export class OverlapIndex<V> {
  private readonly first = new Map<string, { readonly order: number; readonly value: V }>();
  private sorted?: string[];

  constructor(items: Iterable<readonly [string, V]> = []) {
    for (const [p, v] of items) this.add(p, v);
  }

  get size(): number {
    return this.first.size;
  }

  add(p: string, value: V): void {
    if (this.first.has(p)) return;
    this.first.set(p, { order: this.first.size, value });
    this.sorted = undefined;
  }

  /** The earliest added path that is `p`, above it or below it ('' is above everything). */
  overlapping(p: string): V | undefined {
    let best = p === '' ? undefined : this.first.get('');
    const consider = (q: string) => {
      const hit = this.first.get(q);
      if (hit && (!best || hit.order < best.order)) best = hit;
    };
    consider(p);
    for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) consider(p.slice(0, i));
    const sorted = (this.sorted ??= [...this.first.keys()].sort());
    const prefix = p === '' ? '' : p + '/';
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < sorted.length && sorted[i]!.startsWith(prefix); i++) consider(sorted[i]!);
    return best?.value;
  }
}
