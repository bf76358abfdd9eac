/**
 * A dataset minipach works on: the repository, the branch that receives results, and minipach's state
 * directory inside the git dir (never committed). Built once and passed around instead of loose values.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { Annex } from './annex.js';
import { GitRepo } from './git.js';

export interface Dataset {
  /** The working tree root (or the git dir of a bare repository). */
  readonly dir: string;
  readonly repo: GitRepo;
  readonly annex: Annex;
  readonly gitDir: string;
  readonly branch: string;
  readonly ref: string;
  readonly bare: boolean;
  /** `<gitdir>/minipach`: failures, logs, caches, scratch worktrees. */
  readonly stateDir: string;
  /**
   * The git remote the branch is shared through (a daemon's clone). Set: each plan starts from a fetch, and
   * results are pushed there (never forced) before the local branch moves. See results/branch.ts.
   */
  readonly remote?: string;
  /**
   * The git-annex special remote (S3) that holds the content of its files, when that is not the origin:
   * workers put results there and get inputs from there; see adapters/storage.ts.
   */
  readonly storage?: string;
}

/**
 * Opens the dataset at `dir`. `readOnly`: for commands that only read history (explain), a plain git clone
 * on which git-annex was never initialised will do, and so will a detached HEAD (the first branch is read).
 */
export async function openDataset(dir: string, branch?: string, remote?: string, { readOnly = false, storage }: { readOnly?: boolean; storage?: string } = {}): Promise<Dataset> {
  const abs = path.resolve(dir);
  const found = await GitRepo.find(abs);
  if (!found) throw new UsageError(`${abs} is not a git repository (a DataLad dataset is one: datalad create ${dir})`);
  const { root, bare, gitDir } = found;
  const repo = new GitRepo(root);
  const annex = new Annex(root);
  // Independent questions, asked side by side: every command opens a dataset first.
  const [initialised, current] = await Promise.all([readOnly || annex.initialised(), branch ?? repo.currentBranch()]);
  if (!initialised) {
    const cloned = (await repo.resolve('refs/remotes/origin/git-annex')) !== undefined;
    throw new UsageError(
      cloned
        ? `${root} is a clone of a dataset whose annex is not initialised here; run: git -C ${root} annex init`
        : `${root} is not a git-annex repository; make it a DataLad dataset with: datalad create --force ${root}`,
    );
  }
  const br = current ?? (readOnly ? await repo.firstBranch() : undefined);
  if (!br) throw new UsageError(`${root} has a detached HEAD; say which branch receives results with --branch`);
  if (!(await repo.resolve(`refs/heads/${br}`))) throw new UsageError(`branch "${br}" does not exist in ${root}`);
  const stateDir = path.join(gitDir, 'minipach');
  await mkdir(stateDir, { recursive: true });
  if (remote && (await repo.remoteUrl(remote)) === undefined) {
    throw new UsageError(`${root} has no git remote "${remote}"; add it with: git -C ${root} remote add ${remote} <url>`);
  }
  return { dir: root, repo, annex, gitDir, branch: br, ref: `refs/heads/${br}`, bare, stateDir, remote, storage };
}
