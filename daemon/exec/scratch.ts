/**
 * Scratch checkouts: a sparse, detached worktree of the dataset at a job's base commit holding only the
 * datum's inputs, its code, its output directory and DataLad's config. Worktrees share the annex object
 * store, so inputs need no copy and outputs land where the committer can reference them. The dataset's own
 * working tree is never touched, so a failing or concurrent job cannot dirty it.
 */
import { lstat, mkdir, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Annex } from '../adapters/annex.js';
import { GitRepo } from '../adapters/git.js';
import type { Dataset } from '../adapters/dataset.js';
import type { Datum } from '../core/datums.js';
import { MODE_GITLINK, type SubdatasetRef } from '../core/tree.js';

export interface ScratchCheckout {
  readonly dir: string;
  readonly repo: GitRepo;
  /** Deletes the checkout and its worktree admin dir. */
  remove(): Promise<void>;
}

/** gitignore-style pattern matching exactly this path (file or directory) from the root. */
function sparsePattern(p: string): string {
  return '/' + p.replace(/[\\*?[\]!#]/g, (c) => '\\' + c);
}

/**
 * A sparse checkout of `commit` holding `paths` (and `/.datalad/`, `.gitattributes`). It lives in the
 * system temp dir: datalad does not work in a worktree placed inside `.git`.
 */
export async function scratchCheckout(ds: Dataset, commit: string, paths: readonly string[], label: string): Promise<ScratchCheckout> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `minipach-${label}-`));
  const remove = () => removeWorktree(ds, dir);
  try {
    await enableWorktreeConfig(ds);
    const repo = await withWorktreeLock(ds, () => ds.repo.addWorktree(dir, commit));
    await pinRemoteUrls(ds, repo);
    await repo.sparseCheckout(['/.datalad/', '.gitattributes', ...paths.map(sparsePattern)]);
    return { dir, repo, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

/**
 * A remote recorded as a relative path (`datalad clone origin.git mine` records `../origin.git`) means
 * "relative to the dataset"; in a scratch checkout elsewhere git and git-annex would resolve it against the
 * checkout, and every `get` would fail. So the checkout gets the absolute path, in its own worktree config.
 */
async function pinRemoteUrls(ds: Dataset, repo: GitRepo): Promise<void> {
  for (const [remote, url] of await ds.repo.remoteUrls()) {
    if (!isRelativePath(url)) continue;
    await repo.setConfig(`remote.${remote}.url`, path.resolve(ds.dir, url), { worktree: true });
  }
}

/** A remote URL that is a path relative to the repository (not `/abs`, `file://`, `host:path` or `scheme://`). */
export function isRelativePath(url: string): boolean {
  return !path.isAbsolute(url) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^[^/]+:/.test(url);
}

const worktreeConfigReady = new Map<string, Promise<unknown>>();
const worktreeLocks = new Map<string, Promise<unknown>>();

/**
 * `git worktree add` reads every entry of `.git/worktrees/`, and fails on one that another add has only
 * half written; so adding and removing worktrees of one dataset take turns (a few ms each; the jobs
 * themselves still run in parallel).
 */
function withWorktreeLock<T>(ds: Dataset, fn: () => Promise<T>): Promise<T> {
  const next = (worktreeLocks.get(ds.gitDir) ?? Promise.resolve()).then(fn);
  worktreeLocks.set(ds.gitDir, next.catch(() => undefined));
  return next;
}

/**
 * `sparse-checkout set` turns on `extensions.worktreeConfig` in the shared config when it is off; jobs
 * running at once would race for the config lock, so it is turned on once, before any job.
 */
function enableWorktreeConfig(ds: Dataset): Promise<unknown> {
  let ready = worktreeConfigReady.get(ds.gitDir);
  if (!ready) {
    ready = ds.repo.setConfig('extensions.worktreeConfig', 'true');
    worktreeConfigReady.set(ds.gitDir, ready);
  }
  return ready;
}

/**
 * git-annex turns a worktree's `.git` file into a symlink to its admin dir, which `git worktree remove`
 * refuses. So both are deleted here, for this worktree only: a `git worktree prune` would race with other
 * jobs' `worktree add` and delete their half-made admin dirs.
 */
async function removeWorktree(ds: Dataset, wt: string): Promise<void> {
  const dotGit = path.join(wt, '.git');
  let admin: string | undefined;
  try {
    admin = (await lstat(dotGit)).isSymbolicLink() ? await realpath(dotGit) : /^gitdir: (.*)$/m.exec(await readFile(dotGit, 'utf8'))?.[1]?.trim();
  } catch {
    admin = undefined;
  }
  await rm(wt, { recursive: true, force: true });
  if (admin && path.dirname(admin) === path.join(ds.gitDir, 'worktrees')) await withWorktreeLock(ds, () => rm(admin, { recursive: true, force: true }));
}

interface SubdatasetNeed {
  readonly path: string;
  readonly commit: string;
  /** Paths inside it whose content the datum reads; undefined: all of it (the subdataset is the input). */
  paths?: string[];
}

/** The subdatasets a datum's files live in (outermost first), and which of their files it reads. */
export function subdatasetsNeeded(datum: Datum): SubdatasetNeed[] {
  const needs = new Map<string, SubdatasetNeed>();
  const need = (ref: SubdatasetRef) => needs.get(ref.path) ?? needs.set(ref.path, { ...ref, paths: [] }).get(ref.path)!;
  for (const f of datum.inputs.flatMap((i) => i.files)) {
    const chain = f.entry.subdatasets ?? [];
    chain.forEach(need);
    if (f.entry.mode === MODE_GITLINK) need({ path: f.entry.path, commit: f.entry.oid }).paths = undefined;
    else if (chain.length) {
      const inner = need(chain[chain.length - 1]!);
      inner.paths?.push(f.entry.path.slice(inner.path.length + 1));
    }
  }
  return [...needs.values()].sort((a, b) => a.path.split('/').length - b.path.split('/').length);
}

/**
 * Installs the datum's subdatasets into the scratch checkout, at their recorded commits, from the dataset's
 * installed copies, and gets the content the datum reads (hard-linked where possible). Only the datum's own
 * subdatasets are installed; `datalad run` then finds their inputs present. Returns why it could not.
 */
export async function installSubdatasets(ds: Dataset, wt: string, datum: Datum): Promise<string | undefined> {
  for (const need of subdatasetsNeeded(datum)) {
    const problem = await installSubdataset(ds, wt, need);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Takes a datum's subdatasets out of the scratch checkout again (a batch's next datum sees only its own),
 * leaving the empty directories git checked out.
 */
export async function uninstallSubdatasets(wt: string, datum: Datum): Promise<void> {
  for (const need of subdatasetsNeeded(datum).reverse()) {
    const dest = path.join(wt, need.path);
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
  }
}

async function installSubdataset(ds: Dataset, wt: string, sub: SubdatasetNeed): Promise<string | undefined> {
  const source = path.join(ds.dir, sub.path);
  const dest = path.join(wt, sub.path);
  if (!(await new GitRepo(source, path.join(source, '.git')).resolve(sub.commit))) {
    return `subdataset ${sub.path} (commit ${sub.commit.slice(0, 12)}) is not installed in ${ds.dir}; run: datalad get -n ${sub.path}`;
  }
  // An ancestor of the datum's subdataset is installed too (datalad needs the chain), without content.
  const paths = sub.paths === undefined ? ['.'] : sub.paths;
  if (paths.length) {
    // Content comes into the dataset's own copy first (from whatever remotes it has), as `datalad run -i`
    // does for the dataset's other inputs; the scratch clone then hard-links it from there.
    const got = await new Annex(source).get(paths);
    if (!got.ok) return `could not get the content of subdataset ${sub.path}: ${got.message}`;
  }
  await rm(dest, { recursive: true, force: true });
  const clone = await GitRepo.clone(source, dest, { shared: true });
  await clone.checkoutDetached(sub.commit);
  const annex = new Annex(dest);
  await annex.init('minipach scratch', { hardlink: true });
  if (paths.length) {
    const got = await annex.get(paths);
    if (!got.ok) throw new Error(`git annex get failed in ${dest}: ${got.message}`);
  }
  return undefined;
}
