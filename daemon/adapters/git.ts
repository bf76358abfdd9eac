/**
 * Git access in minipach's own verbs: list a commit's tree, read blobs in bulk, write a commit from a base
 * tree plus changes, move a ref only if it is where we expect. Parsers are pure and exported for tests.
 */
import { run, runBuffer, runUnchecked } from './process.js';
import { BranchMovedError } from '../errors.js';

export interface LsTreeEntry {
  readonly mode: string;
  readonly type: 'blob' | 'commit' | 'tree';
  readonly oid: string;
  /** Size in bytes; undefined for submodule commits. */
  readonly size: number | undefined;
  readonly path: string;
}

/** Parses `git ls-tree -r -z -l` output. */
export function parseLsTree(out: Buffer | string): LsTreeEntry[] {
  const text = typeof out === 'string' ? out : out.toString('utf8');
  const entries: LsTreeEntry[] = [];
  for (const rec of text.split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, type, oid, size] = rec.slice(0, tab).split(/ +/);
    entries.push({ mode: mode!, type: type as LsTreeEntry['type'], oid: oid!, size: size === '-' ? undefined : Number(size), path: rec.slice(tab + 1) });
  }
  return entries;
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

export interface IndexChange {
  readonly path: string;
  /** Absent: remove the path. */
  readonly mode?: string;
  readonly oid?: string;
}

const ZERO_OID = '0000000000000000000000000000000000000000';

export class GitRepo {
  constructor(readonly dir: string) {}

  git(args: readonly string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<string> {
    return run(['git', ...args], { cwd: this.dir, ...opts });
  }

  /** Every file of `commit`, or only those at or below `paths` (taken literally, not as globs). */
  async lsTree(commit: string, paths?: readonly string[]): Promise<LsTreeEntry[]> {
    if (paths && !paths.length) return [];
    const out = await runBuffer(['git', '--literal-pathspecs', 'ls-tree', '-r', '-z', '-l', '--full-tree', commit, ...(paths ? ['--', ...paths] : [])], { cwd: this.dir });
    return parseLsTree(out);
  }

  async readBlobs(oids: readonly string[]): Promise<Map<string, Buffer>> {
    if (!oids.length) return new Map();
    const out = await runBuffer(['git', 'cat-file', '--batch'], { cwd: this.dir, input: oids.join('\n') + '\n' });
    return parseCatFileBatch(out);
  }

  async resolve(rev: string): Promise<string | undefined> {
    const r = await runUnchecked(['git', 'rev-parse', '-q', '--verify', `${rev}^{commit}`], { cwd: this.dir });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** The branch HEAD points at (`main`), or undefined when detached. */
  async currentBranch(): Promise<string | undefined> {
    const r = await runUnchecked(['git', 'symbolic-ref', '-q', '--short', 'HEAD'], { cwd: this.dir });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  async gitDir(): Promise<string> {
    return (await this.git(['rev-parse', '--absolute-git-dir'])).trim();
  }

  async writeBlob(content: string | Buffer): Promise<string> {
    return (await this.git(['hash-object', '-w', '--stdin'], { input: content })).trim();
  }

  /** `%H\x1f%B\x1e` records of the commits in `range` whose title matches one of `titlePrefixes`. */
  async commitMessages(range: string, titlePrefixes: readonly string[]): Promise<{ commit: string; message: string }[]> {
    const grep = titlePrefixes.flatMap((p) => ['--grep', '^' + p.replace(/[[\]\\.^$*]/g, '\\$&')]);
    const out = await this.git(['log', '--reverse', '--format=%H%x1f%B%x1e', ...grep, range]);
    return out
      .split('\x1e')
      .map((r) => r.replace(/^\n/, ''))
      .filter((r) => r.includes('\x1f'))
      .map((r) => {
        const [commit, message] = r.split('\x1f');
        return { commit: commit!, message: message! };
      });
  }

  /**
   * Builds a commit on `parent` by applying `changes` to its tree through a private index file (never the
   * user's index, no checkout); no parent: on an empty tree. `otherParents` follow it (a merge). Returns
   * the new commit id.
   */
  async commitChanges(parent: string | undefined, changes: readonly IndexChange[], message: string, indexFile: string, otherParents: readonly string[] = []): Promise<string> {
    const env = { GIT_INDEX_FILE: indexFile };
    await run(['git', 'read-tree', ...(parent ? [parent] : ['--empty'])], { cwd: this.dir, env });
    const info = changes.map((c) => (c.mode && c.oid ? `${c.mode} ${c.oid}\t${c.path}` : `0 ${ZERO_OID}\t${c.path}`)).join('\n');
    if (info) await run(['git', 'update-index', '-z', '--index-info'], { cwd: this.dir, env, input: info.replace(/\n/g, '\0') + '\0' });
    const tree = (await run(['git', 'write-tree'], { cwd: this.dir, env })).trim();
    const parents = [...(parent ? [parent] : []), ...otherParents];
    return (await run(['git', 'commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), '-F', '-'], { cwd: this.dir, input: message })).trim();
  }

  /** Moves `ref` from `expected` to `next`; throws BranchMovedError when someone moved it meanwhile. */
  async moveRef(ref: string, next: string, expected: string, reason: string): Promise<void> {
    const r = await runUnchecked(['git', 'update-ref', '-m', reason, ref, next, expected], { cwd: this.dir });
    if (r.exitCode !== 0) {
      if ((await this.resolve(ref)) !== expected) throw new BranchMovedError(ref, expected);
      throw new Error(`git update-ref ${ref} failed: ${r.stderr.trim()}`);
    }
  }
}
