/**
 * Git's formats as minipach reads and writes them: `ls-tree -r -z -l` and `cat-file --batch` output, and
 * `fast-import` streams. Pure functions (tested against captured output); git.ts runs the processes.
 */

export interface LsTreeEntry {
  readonly mode: string;
  readonly type: 'blob' | 'commit' | 'tree';
  readonly oid: string;
  /** Size in bytes; undefined for submodule commits. */
  readonly size: number | undefined;
  readonly path: string;
}

/** Parses `git ls-tree -r -z [-l]` output. */
export function parseLsTree(out: Buffer | string): LsTreeEntry[] {
  const text = typeof out === 'string' ? out : out.toString('utf8');
  const entries: LsTreeEntry[] = [];
  // `<mode> SP <type> SP <oid>[ SP+ <size>] TAB <path> NUL`, read by position (10^5 records: no split per record).
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf('\0', at);
    if (end < 0) end = text.length;
    const tab = text.indexOf('\t', at);
    if (tab < 0 || tab > end) {
      at = end + 1;
      continue;
    }
    const sp1 = text.indexOf(' ', at);
    const sp2 = text.indexOf(' ', sp1 + 1);
    const sp3 = text.indexOf(' ', sp2 + 1);
    const oidEnd = sp3 >= 0 && sp3 < tab ? sp3 : tab;
    const size = oidEnd === tab ? undefined : text.slice(oidEnd, tab).trim();
    entries.push({
      mode: internedMode(text, at, sp1),
      type: (text.startsWith('blob', sp1 + 1) ? 'blob' : text.startsWith('tree', sp1 + 1) ? 'tree' : 'commit') as LsTreeEntry['type'],
      oid: text.slice(sp2 + 1, oidEnd),
      size: size === undefined || size === '-' ? undefined : Number(size),
      path: text.slice(tab + 1, end),
    });
    at = end + 1;
  }
  return entries;
}

const MODES = ['100644', '120000', '100755', '040000', '160000'];

/** The mode at text[from, to), one shared string per mode (10^5 entries hold five distinct ones). */
function internedMode(text: string, from: number, to: number): string {
  for (const m of MODES) if (to - from === m.length && text.startsWith(m, from)) return m;
  return text.slice(from, to);
}

/** A file changed between two commits: its new mode and blob, or `deleted`. */
export type FileChange = { readonly path: string; readonly deleted: true } | { readonly path: string; readonly deleted?: false; readonly mode: string; readonly oid: string };

/** Parses `git diff-tree -r -z --no-renames` raw output (`:old new oldoid newoid S\0path\0` records). */
export function parseDiffTree(out: Buffer | string): FileChange[] {
  const fields = (typeof out === 'string' ? out : out.toString('utf8')).split('\0');
  const changes: FileChange[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const meta = fields[i]!;
    if (!meta.startsWith(':')) {
      // A commit id line (diff-tree given a single commit): not a record.
      i -= 1;
      continue;
    }
    const [, mode, , oid, status] = meta.slice(1).split(' ');
    const p = fields[i + 1]!;
    changes.push(status === 'D' ? { path: p, deleted: true } : { path: p, mode: mode!, oid: oid! });
  }
  return changes;
}

/** Parses `git cat-file --batch-check` output into oid -> size. Missing objects are left out. */
export function parseBatchCheck(out: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const line of out.split('\n')) {
    const [oid, type, size] = line.split(' ');
    if (oid && type && type !== 'missing' && size) sizes.set(oid, Number(size));
  }
  return sizes;
}

/** Parses `git cat-file --batch` output into oid -> content. Missing objects are left out. */
export function parseCatFileBatch(out: Buffer): Map<string, Buffer> {
  const res = new Map<string, Buffer>();
  let pos = 0;
  while (pos < out.length) {
    const nl = out.indexOf(0x0a, pos);
    if (nl < 0) break;
    const header = out.subarray(pos, nl).toString('utf8').split(' ');
    pos = nl + 1;
    if (header[1] === 'missing' || header.length < 3) continue;
    const size = Number(header[2]);
    res.set(header[0]!, out.subarray(pos, pos + size));
    pos += size + 1;
  }
  return res;
}

/**
 * The same output with each object decoded straight from its bytes (`decode(out, start, end)`), in the
 * order asked, a missing one as undefined: for 10^5 annex link targets, no Buffer view, header split, text
 * or id per object.
 */
export function parseCatFileInOrder<T>(out: Buffer, decode: (bytes: Buffer, start: number, end: number) => T): (T | undefined)[] {
  const res: (T | undefined)[] = [];
  // Byte by byte in JS: headers are short, and each Buffer method call would cross into C++ (10^5 objects).
  for (let pos = 0; pos < out.length; ) {
    let i = pos;
    while (i < out.length && out[i] !== 0x20 && out[i] !== 0x0a) i++;
    if (out[i] === 0x20) i++;
    while (i < out.length && out[i] !== 0x20 && out[i] !== 0x0a) i++;
    if (i >= out.length) break;
    if (out[i] === 0x0a) {
      // `<oid> missing` (one field after the id).
      res.push(undefined);
      pos = i + 1;
      continue;
    }
    let size = 0;
    for (i++; i < out.length && out[i] !== 0x0a; i++) size = size * 10 + out[i]! - 0x30;
    res.push(decode(out, i + 1, i + 1 + size));
    pos = i + 1 + size + 1;
  }
  return res;
}

/** How a push ended: `rejected` means someone else's commit got there first (fetch, re-plan, try again). */
export type PushOutcome = { readonly status: 'ok' } | { readonly status: 'rejected' | 'failed'; readonly message: string };

/** How a fetch ended. */
export interface FetchOutcome {
  readonly ok: boolean;
  readonly timedOut: boolean;
  /** The last lines of git's stderr, when it failed. */
  readonly message: string;
}

export interface FetchOptions {
  /** Give up after this long (a remote that hangs must not hang a plan). */
  readonly timeoutMs?: number;
  /** Never prompt for credentials or host keys (no terminal is there to answer). */
  readonly noPrompt?: boolean;
  readonly noTags?: boolean;
}

export interface IndexChange {
  readonly path: string;
  /** Absent: remove the path. */
  readonly mode?: string;
  readonly oid?: string;
}

/** A change to a tree in a batch of commits written at once (GitRepo.writeCommits). */
export type TreeChange =
  /** The file at `path` is this blob. */
  | { readonly path: string; readonly mode: string; readonly oid: string }
  /** The file at `path` holds `content` (the blob is written with the commit). */
  | { readonly path: string; readonly mode: string; readonly content: string | Buffer }
  /** Remove `path`: a file, or a directory with everything below it. */
  | { readonly path: string; readonly remove: true };

export interface CommitSpec {
  readonly changes: readonly TreeChange[];
  readonly message: string;
  /** Parents besides the previous commit of the chain (merges). */
  readonly otherParents?: readonly string[];
  /** The first parent, when it is not the previous commit of the chain: commits of one stream side by side. */
  readonly from?: string;
}

/** A path as fast-import takes it: C-quoted when it starts with a quote or holds a newline or backslash. */
export function fastImportPath(p: string): string {
  return /^"|[\n\\]/.test(p) ? `"${p.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"` : p;
}

/**
 * The fast-import stream of a chain of commits on `parent` (none: a root commit). Pure, exported for tests.
 * Marks `:1`, `:2`, ... name the commits in order.
 */
export function fastImportStream(ref: string, parent: string | undefined, commits: readonly CommitSpec[], ident: { author: string; committer: string }): Buffer {
  const parts: Buffer[] = [];
  const text = (s: string) => parts.push(Buffer.from(s, 'utf8'));
  const data = (d: string | Buffer) => {
    const b = typeof d === 'string' ? Buffer.from(d, 'utf8') : d;
    text(`data ${b.length}\n`);
    parts.push(b);
    text('\n');
  };
  commits.forEach((c, i) => {
    text(`commit ${ref}\nmark :${i + 1}\nauthor ${ident.author}\ncommitter ${ident.committer}\n`);
    data(c.message);
    const from = c.from ?? (i === 0 ? parent : undefined);
    if (from) text(`from ${from}\n`);
    for (const p of c.otherParents ?? []) text(`merge ${p}\n`);
    for (const ch of c.changes) {
      if ('remove' in ch) text(`D ${fastImportPath(ch.path)}\n`);
      else if ('oid' in ch) text(`M ${ch.mode} ${ch.oid} ${fastImportPath(ch.path)}\n`);
      else {
        text(`M ${ch.mode} inline ${fastImportPath(ch.path)}\n`);
        data(ch.content);
      }
    }
    text('\n');
  });
  text('done\n');
  return Buffer.concat(parts);
}
