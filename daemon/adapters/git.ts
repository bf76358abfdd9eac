/**
 * Git access in minipach's own verbs: list a commit's tree, read blobs in bulk, write a commit from a base
 * tree plus changes (or a chain of commits in one fast-import), move a ref only if it is where we expect.
 * The formats it parses and writes are in git-format.ts.
 */
import { run, runBuffer, runUnchecked, type RunResult } from './process.js';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { BranchMovedError, MinipachError } from '../core/errors.js';
import { ZERO_OID } from '../core/tree.js';
import { fastImportStream, parseBatchCheck, parseCatFileBatch, parseCatFileInOrder, parseDiffTree, parseLsTree, type CommitSpec, type FetchOptions, type FetchOutcome, type FileChange, type IndexChange, type LsTreeEntry, type PushOutcome } from './git-format.js';

export { fastImportPath, fastImportStream, parseCatFileBatch, parseLsTree, type CommitSpec, type FetchOptions, type FetchOutcome, type FileChange, type IndexChange, type LsTreeEntry, type PushOutcome, type TreeChange } from './git-format.js';

const lastLines = (s: string, n: number) => s.trim().split('\n').slice(-n).join(' ');
// Empty commands are no filter to git: files are written and compared as their blobs are.
const NO_ANNEX_FILTER = ['-c', 'filter.annex.process=', '-c', 'filter.annex.smudge=', '-c', 'filter.annex.clean='];

/**
 * One git repository. `gitDir` pins GIT_DIR: for a subdataset that may not be installed, whose directory
 * would otherwise resolve to the enclosing repository.
 */
export class GitRepo {
  private gitDirPath?: string;

  constructor(readonly dir: string, private readonly explicitGitDir?: string) {}

  /** Runs git here; throws ProcessError on failure. For the verbs below, not for callers outside adapters/. */
  private git(args: readonly string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<string> {
    return run(['git', ...args], { cwd: this.dir, ...opts, env: { ...this.env(), ...opts.env } });
  }

  private gitUnchecked(args: readonly string[], opts: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult<string>> {
    return runUnchecked(['git', ...args], { cwd: this.dir, ...opts, env: { ...this.env(), ...opts.env } });
  }

  private env(): Record<string, string> {
    return this.explicitGitDir ? { GIT_DIR: this.explicitGitDir } : {};
  }

  /** Clones `url` into `dir` without a checkout (`shared`: borrow the source's objects). */
  static async clone(url: string, dir: string, opts: { shared?: boolean } = {}): Promise<GitRepo> {
    const r = await runUnchecked(['git', 'clone', '-q', '--no-checkout', ...(opts.shared ? ['--shared'] : []), url, dir]);
    if (r.exitCode !== 0) throw new MinipachError(`could not clone ${url}: ${r.stderr.trim()}`);
    return new GitRepo(dir);
  }

  /** A new, empty repository in `dir` (git init). */
  static async init(dir: string): Promise<GitRepo> {
    const r = await runUnchecked(['git', 'init', '-q', dir]);
    if (r.exitCode !== 0) throw new MinipachError(`could not create a repository in ${dir}: ${r.stderr.trim()}`);
    return new GitRepo(dir);
  }

  /** The repository at or above `dir`: its root (the git dir of a bare one) and git dir, or undefined when none. */
  static async find(dir: string): Promise<{ root: string; bare: boolean; gitDir: string } | undefined> {
    // One process for all three; --show-toplevel comes last because it fails in a bare repository, after
    // the others have printed.
    const r = await runUnchecked(['git', 'rev-parse', '--is-bare-repository', '--absolute-git-dir', '--show-toplevel'], { cwd: dir }).catch(() => undefined);
    const [bare, gitDir, top] = (r?.stdout ?? '').trim().split('\n');
    if (bare === 'true' && gitDir) return { root: dir, bare: true, gitDir };
    if (!r || r.exitCode !== 0 || bare !== 'false' || !gitDir || !top) return undefined;
    return { root: top, bare: false, gitDir };
  }

  /** Every file of `commit`, or only those at or below `paths` (taken literally, not as globs). */
  async lsTree(commit: string, paths?: readonly string[], { sizes = true } = {}): Promise<LsTreeEntry[]> {
    if (paths && !paths.length) return []; // sizes (-l) cost a look into every blob: 0.3 s at 10^5 files
    const out = await runBuffer(['git', '--literal-pathspecs', 'ls-tree', '-r', '-z', ...(sizes ? ['-l'] : []), '--full-tree', commit, ...(paths ? ['--', ...paths] : [])], { cwd: this.dir, env: this.env() });
    return parseLsTree(out);
  }

  /** Every file of `commit` as `ls-tree -r -z` lists them, unparsed (a snapshot keeps the listing as it came). */
  listFiles(commit: string, whileRunning?: () => void): Promise<Buffer> {
    return runBuffer(['git', 'ls-tree', '-r', '-z', '--full-tree', commit], { cwd: this.dir, env: this.env(), whileRunning });
  }

  /** The directories of `commit` (recursively, or only `paths` among them). */
  async lsTreeDirs(commit: string, paths?: readonly string[]): Promise<string[]> {
    const out = await this.git(['ls-tree', '-d', ...(paths ? [] : ['-r']), '--name-only', commit, ...(paths ? ['--', ...paths] : [])]);
    return out.split('\n').filter(Boolean);
  }

  /** Files added between two commits (`diff-tree --diff-filter=A`), with their blob ids. */
  async addedFiles(since: string, commit: string): Promise<{ path: string; oid: string }[]> {
    const fields = (await this.git(['diff-tree', '-r', '-z', '--no-renames', '--diff-filter=A', since, commit])).split('\0');
    const out: { path: string; oid: string }[] = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const oid = fields[i]!.split(' ')[3];
      if (oid) out.push({ path: fields[i + 1]!, oid });
    }
    return out;
  }

  /** The files that differ between two commits (`diff-tree -r`, no rename detection): what a snapshot of `to` needs besides `from`'s. */
  async fileChanges(from: string, to: string): Promise<FileChange[]> {
    return parseDiffTree(await runBuffer(['git', 'diff-tree', '-r', '-z', '--no-renames', from, to], { cwd: this.dir, env: this.env() }));
  }

  /** The sizes of objects (`cat-file --batch-check`, one process). */
  async objectSizes(oids: readonly string[]): Promise<Map<string, number>> {
    if (!oids.length) return new Map();
    return parseBatchCheck((await runBuffer(['git', 'cat-file', '--batch-check', '--buffer'], { cwd: this.dir, input: oids.join('\n') + '\n', env: this.env() })).toString('utf8'));
  }

  /** The bytes of a file of a commit (or any tree-ish), or undefined when there is none. */
  fileAt = (treeish: string, file: string): Promise<Buffer | undefined> => runBuffer(['git', 'cat-file', 'blob', `${treeish}:${file}`], { cwd: this.dir, env: this.env() }).catch(() => undefined);

  async readBlobs(oids: readonly string[]): Promise<Map<string, Buffer>> {
    return new Map((await this.catFileBatch(oids)).flatMap((out) => [...parseCatFileBatch(out)]));
  }

  /** Like readBlobs, each blob decoded from its bytes by `decode`, answered in the order asked (undefined: missing): for 10^5 annex link targets, no Buffer, text or map entry per blob. */
  async readBlobsInOrder<T>(oids: readonly string[], decode: (bytes: Buffer, start: number, end: number) => T): Promise<(T | undefined)[]> {
    return (await this.catFileBatch(oids)).flatMap((out) => parseCatFileInOrder(out, decode));
  }

  /** `cat-file --batch --buffer` (flushed when full, not per object); many blobs: two processes, one a core. */
  private catFileBatch(oids: readonly string[]): Promise<Buffer[]> {
    const parts = oids.length > 20_000 ? 2 : oids.length ? 1 : 0;
    const size = Math.ceil(oids.length / parts);
    const read = (i: number) => runBuffer(['git', 'cat-file', '--batch', '--buffer'], { cwd: this.dir, input: oids.slice(i * size, (i + 1) * size).join('\n') + '\n', env: this.env() });
    return Promise.all(Array.from({ length: parts }, (_, i) => read(i)));
  }

  async resolve(rev: string): Promise<string | undefined> {
    const r = await this.gitUnchecked(['rev-parse', '-q', '--verify', `${rev}^{commit}`]).catch(() => undefined);
    return r?.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** The root tree of a commit, or undefined when the commit is not here. */
  async treeOf(commit: string): Promise<string | undefined> {
    const r = await this.gitUnchecked(['rev-parse', '-q', '--verify', `${commit}^{tree}`]).catch(() => undefined);
    return r?.exitCode === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
  }

  /** Whether `a` is an ancestor of (or equal to) `b`. */
  isAncestor = async (a: string, b: string): Promise<boolean> => (await this.gitUnchecked(['merge-base', '--is-ancestor', a, b])).exitCode === 0;

  /** The branch HEAD points at (`main`), or undefined when detached. */
  async currentBranch(): Promise<string | undefined> {
    const r = await this.gitUnchecked(['symbolic-ref', '-q', '--short', 'HEAD']);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** The first local branch by name, for a clone with a detached HEAD. */
  firstBranch = async (): Promise<string | undefined> => (await this.git(['for-each-ref', '--count=1', '--format=%(refname:short)', 'refs/heads/'])).trim() || undefined;

  async gitDir(): Promise<string> {
    this.gitDirPath ??= (await this.git(['rev-parse', '--absolute-git-dir'])).trim();
    return this.gitDirPath;
  }

  /** The common git dir (a worktree's main repository's; where the annex lives). */
  commonDir = async (): Promise<string> => path.resolve(this.dir, (await this.git(['rev-parse', '--git-common-dir'])).trim());

  /** The hooks directory (core.hooksPath respected). */
  hooksDir = async (): Promise<string> => path.resolve(this.dir, (await this.git(['rev-parse', '--git-path', 'hooks'])).trim());

  /** A config value, or undefined when unset. */
  async config(key: string): Promise<string | undefined> {
    const r = await this.gitUnchecked(['config', '--get', key]);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** A value from a config file of the working tree (`.datalad/config`), or undefined. */
  async configIn(file: string, key: string): Promise<string | undefined> {
    const r = await this.gitUnchecked(['config', '-f', path.join(this.dir, file), '--get', key]);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** name -> value of the config keys matching `regexp` (of the repository's config, or a file or blob `from`: `commit:path`). */
  async configMatching(regexp: string, from?: { file: string } | { blob: string }): Promise<Map<string, string>> {
    const source = !from ? [] : 'file' in from ? ['-f', path.join(this.dir, from.file)] : ['--blob', from.blob];
    const out = (await this.gitUnchecked(['config', ...source, '--get-regexp', regexp])).stdout;
    return new Map(out.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const));
  }

  /** Sets a config value; `worktree`: for this worktree only (needs extensions.worktreeConfig); `file`: in that file of the repository. */
  async setConfig(key: string, value: string, { worktree = false, file }: { worktree?: boolean; file?: string } = {}): Promise<void> {
    await this.git(['config', ...(worktree ? ['--worktree'] : []), ...(file ? ['-f', path.join(this.dir, file)] : []), key, value]);
  }

  /** remote name -> URL, for the git remotes that have one. */
  async remoteUrls(): Promise<Map<string, string>> {
    return new Map([...(await this.configMatching('^remote\\..*\\.url$'))].map(([k, v]) => [k.slice('remote.'.length, -'.url'.length), v]));
  }

  /** The URL of a git remote, or undefined when there is no such remote. */
  async remoteUrl(remote: string): Promise<string | undefined> {
    const r = await this.gitUnchecked(['remote', 'get-url', remote]).catch(() => undefined);
    return r?.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** The git remotes that have a URL (annex special remotes have none). */
  remotes = async (): Promise<string[]> => [...(await this.remoteUrls()).keys()];

  /** The value of a git attribute for a path (`unspecified` when none applies). */
  async attribute(name: string, file: string): Promise<string> {
    return (await this.git(['check-attr', name, '--', file])).trim().split(': ').pop() ?? 'unspecified';
  }

  async writeBlob(content: string | Buffer): Promise<string> {
    return (await this.git(['hash-object', '-w', '--stdin'], { input: content })).trim();
  }

  /** A commit's full message, or undefined when the commit is not here. */
  async commitMessage(commit: string): Promise<string | undefined> {
    const r = await this.gitUnchecked(['show', '-s', '--format=%B', commit]);
    return r.exitCode === 0 ? r.stdout : undefined;
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

  /** Commit -> its committer time (Unix seconds), for the commits that exist (one git process). */
  async commitTimes(commits: readonly string[]): Promise<Map<string, number>> {
    const out = commits.length ? (await this.gitUnchecked(['log', '--no-walk=unsorted', '--stdin', '--format=%H %ct'], { input: commits.join('\n') + '\n' })).stdout : '';
    return new Map(out.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), Number(l.slice(l.indexOf(' ') + 1))] as const));
  }
  /** The last commit (from `commit` back) that changed each of `paths`, in one history walk per 200 paths. */
  async lastChanges(commit: string, paths: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (let i = 0; i < paths.length; i += 200) {
      const batch = paths.slice(i, i + 200);
      const out = (await this.gitUnchecked(['log', '--format=%x1e%H', '--name-only', '--no-renames', commit, '--', ...batch])).stdout;
      for (const rec of out.split('\x1e')) {
        const [sha, ...files] = rec.split('\n').filter(Boolean);
        for (const f of files) if (sha && !found.has(f)) found.set(f, sha);
        if (batch.every((p) => found.has(p))) break;
      }
    }
    return found;
  }

  /**
   * Builds a commit on `parent` by applying `changes` to its tree through a private index file (never the
   * user's index, no checkout); no parent: on an empty tree. `otherParents` follow it (a merge). Returns
   * the new commit id.
   */
  async commitChanges(parent: string | undefined, changes: readonly IndexChange[], message: string, otherParents: readonly string[] = []): Promise<string> {
    const dir = path.join(await this.gitDir(), 'minipach');
    await mkdir(dir, { recursive: true });
    const env = { GIT_INDEX_FILE: path.join(dir, `index-${process.pid}-${randomBytes(4).toString('hex')}`) };
    try {
      await this.git(['read-tree', ...(parent ? [parent] : ['--empty'])], { env });
      const info = changes.map((c) => (c.mode && c.oid ? `${c.mode} ${c.oid}\t${c.path}` : `0 ${ZERO_OID}\t${c.path}`));
      if (info.length) await this.git(['update-index', '-z', '--index-info'], { env, input: info.join('\0') + '\0' });
      const tree = (await this.git(['write-tree'], { env })).trim();
      const parents = [...(parent ? [parent] : []), ...otherParents];
      return (await this.git(['commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), '-F', '-'], { input: message })).trim();
    } finally {
      await rm(env.GIT_INDEX_FILE, { force: true });
    }
  }

  /**
   * Writes a chain of commits on `parent` in one `git fast-import` (blobs, trees and commits alike), so that
   * K commits cost a fixed number of processes, not O(K). No ref moves; no hook runs (as with commit-tree).
   * Returns the commit ids in order.
   */
  async writeCommits(parent: string | undefined, commits: readonly CommitSpec[]): Promise<string[]> {
    if (!commits.length) return [];
    const ident = await this.identity();
    const dir = path.join(await this.gitDir(), 'minipach');
    await mkdir(dir, { recursive: true });
    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const marks = path.join(dir, `marks-${tag}`);
    const ref = `refs/minipach/import/${tag}`;
    try {
      await this.git(['fast-import', '--quiet', '--done', `--export-marks=${marks}`], { input: fastImportStream(ref, parent, commits, ident) });
      const byMark = new Map((await readFile(marks, 'utf8')).split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]));
      return commits.map((_, i) => byMark.get(`:${i + 1}`)!);
    } finally {
      await this.deleteRefs([ref]);
      await rm(marks, { force: true });
    }
  }

  private identityCache?: { author: string; committer: string };

  /** Who commits: `git var`'s identities (the environment's, else config, else the fallback of process.ts), stamped now. */
  private async identity(): Promise<{ author: string; committer: string }> {
    this.identityCache ??= {
      author: (await this.git(['var', 'GIT_AUTHOR_IDENT'])).trim(),
      committer: (await this.git(['var', 'GIT_COMMITTER_IDENT'])).trim(),
    };
    const now = `${Math.floor(Date.now() / 1000)} +0000`;
    const stamp = (ident: string) => ident.replace(/ \d+ [+-]\d{4}$/, ` ${now}`);
    return { author: stamp(this.identityCache.author), committer: stamp(this.identityCache.committer) };
  }

  /**
   * Compare-and-swap: moves `ref` to `next` only if it is at `expected` (undefined: only if it does not
   * exist). False when someone else moved it first.
   */
  async casRef(ref: string, next: string, expected: string | undefined, reason: string): Promise<boolean> {
    const r = await this.gitUnchecked(['update-ref', '-m', reason, ref, next, expected ?? ZERO_OID]);
    if (r.exitCode === 0) return true;
    if ((await this.resolve(ref)) !== expected) return false;
    throw new MinipachError(`git update-ref ${ref} failed in ${this.dir}: ${r.stderr.trim()}`);
  }

  /** Moves `ref` from `expected` to `next`; throws BranchMovedError when someone moved it meanwhile. */
  async moveRef(ref: string, next: string, expected: string | undefined, reason: string): Promise<void> {
    if (!(await this.casRef(ref, next, expected, reason))) throw new BranchMovedError(ref, expected ?? ZERO_OID);
  }

  /** Sets a ref unconditionally (a remote-tracking copy of what we just pushed). */
  async setRef(ref: string, commit: string): Promise<void> {
    await this.git(['update-ref', ref, commit]);
  }

  /** Deletes refs (those already gone are fine). */
  async deleteRefs(refs: readonly string[]): Promise<void> {
    if (refs.length) await this.gitUnchecked(['update-ref', '--stdin'], { input: refs.map((r) => `delete ${r}\n`).join('') });
  }

  /** ref -> commit of the refs matching `patterns` (for-each-ref patterns). */
  async refs(patterns: readonly string[]): Promise<{ ref: string; commit: string }[]> {
    const out = await this.git(['for-each-ref', '--format=%(refname) %(objectname)', ...patterns]);
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [ref, commit] = l.split(' ');
        return { ref: ref!, commit: commit! };
      });
  }

  /** Fetches refspecs from a remote. */
  async fetch(remote: string, refspecs: readonly string[], opts: FetchOptions = {}): Promise<FetchOutcome> {
    const env: Record<string, string> = opts.noPrompt
      ? { GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: process.env['GIT_SSH_COMMAND'] ?? 'ssh -o BatchMode=yes -o ConnectTimeout=10' }
      : {};
    const r = await this.gitUnchecked(['fetch', '-q', ...(opts.noTags ? ['--no-tags'] : []), remote, ...refspecs], { env, timeoutMs: opts.timeoutMs });
    return { ok: r.exitCode === 0 && !r.timedOut, timedOut: r.timedOut, message: lastLines(r.stderr, 2) };
  }

  /** Pushes refspecs (never forced unless a refspec says `+`). */
  async push(remote: string, refspecs: readonly string[]): Promise<PushOutcome> {
    const r = await this.gitUnchecked(['push', '-q', '--porcelain', remote, ...refspecs]);
    if (r.exitCode === 0) return { status: 'ok' };
    const text = r.stdout + r.stderr;
    const message = lastLines(r.stderr || r.stdout, 3);
    // A plain push is refused when the remote's ref is not an ancestor of ours: someone pushed meanwhile.
    const rejected = /\[rejected\]|non-fast-forward|fetch first|\[remote rejected\].*(cannot lock|failed to update)/.test(text);
    return { status: rejected ? 'rejected' : 'failed', message };
  }

  /**
   * Brings the checked-out working tree and index from `oldHead` to `newHead` as a fast-forward would
   * (`read-tree -m -u`, a two-way merge: local changes are kept, and a conflicting one stops the update).
   * Returns git's complaint when it refused. `annexFilter: false` leaves git-annex's filter out, for an update
   * that writes no unlocked annexed file (docs/decisions.md, "Integrating at scale").
   */
  async followCheckout(oldHead: string, newHead: string, { annexFilter = true } = {}): Promise<string | undefined> {
    const r = await this.gitUnchecked([...(annexFilter ? [] : NO_ANNEX_FILTER), 'read-tree', '-m', '-u', oldHead, newHead]);
    return r.exitCode === 0 ? undefined : r.stderr.trim().split('\n')[0] ?? 'refused';
  }

  /** Adds a detached worktree at `commit` without checking anything out. */
  async addWorktree(dir: string, commit: string): Promise<GitRepo> {
    await this.git(['worktree', 'add', '--no-checkout', '--detach', dir, commit]);
    return new GitRepo(dir);
  }

  /** Forgets worktrees whose directories are gone. */
  async pruneWorktrees(): Promise<void> {
    await this.gitUnchecked(['worktree', 'prune']);
  }

  /** Checks out only the files matching gitignore-style `patterns` (in a worktree made without checkout). */
  async sparseCheckout(patterns: readonly string[]): Promise<void> {
    await this.git(['sparse-checkout', 'set', '--no-cone', '--stdin'], { input: patterns.join('\n') + '\n' });
    await this.git(['checkout', '-q']);
  }

  /** Checks out `commit` with a detached HEAD. */
  async checkoutDetached(commit: string): Promise<void> {
    await this.git(['checkout', '-q', '--detach', commit]);
  }

  /** The commit HEAD points at. */
  head = async (): Promise<string> => (await this.git(['rev-parse', 'HEAD'])).trim();
}
