/**
 * The branch that receives results, as the committer sees it: where a plan starts from (`syncBranch`) and
 * how a new tip is published (`publishBranch`). Without a remote that is the local ref, moved with a
 * compare-and-swap. With one, the remote is the shared truth: each plan starts from a fetch, results are
 * pushed there first (a plain push, never forced, so anybody's commit that got there first makes it fail
 * and the caller re-plans on top of it), and the local branch follows.
 */
import path from 'node:path';
import { BranchMovedError, MinipachError } from '../core/errors.js';
import { GitRepo } from '../adapters/git.js';
import type { Dataset } from '../adapters/dataset.js';
import { remoteResultsRefspec } from './shared-ref.js';

/** Private refs where workers hand in their run commits, one per datum key. */
export const RUN_REF_PREFIX = 'refs/minipach/runs/';

export const runRef = (key: string) => `${RUN_REF_PREFIX}${key}`;

const RUN_REFSPEC = `+${RUN_REF_PREFIX}*:${RUN_REF_PREFIX}*`;

export class BranchDivergedError extends MinipachError {
  override name = 'BranchDivergedError';
  constructor(readonly ds: Dataset, local: string, remote: string) {
    super(
      `${ds.dir}: branch ${ds.branch} (${local.slice(0, 12)}) and ${ds.remote}/${ds.branch} (${remote.slice(0, 12)}) have diverged; ` +
        `minipach only integrates on top of the remote. Bring the local branch in line, e.g. git -C ${ds.dir} merge ${ds.remote}/${ds.branch} && git -C ${ds.dir} push ${ds.remote} ${ds.branch}`,
    );
  }
}

/**
 * Fetches the branch and the handed-in run commits from the remote and brings the local branch up to the
 * remote's (a fast-forward; a working tree that has it checked out follows). No remote: nothing to do.
 */
export async function syncBranch(ds: Dataset): Promise<string | undefined> {
  if (!ds.remote) return undefined;
  const tracking = `refs/remotes/${ds.remote}/${ds.branch}`;
  const f = await ds.repo.fetch(ds.remote, [`+refs/heads/*:refs/remotes/${ds.remote}/*`, RUN_REFSPEC, remoteResultsRefspec(ds.remote)]);
  if (!f.ok) throw new MinipachError(`could not fetch from ${ds.remote} in ${ds.dir}: ${f.message}`);
  const remoteHead = await ds.repo.resolve(tracking);
  const local = await ds.repo.resolve(ds.ref);
  if (!remoteHead || remoteHead === local) return undefined;
  if (!local || (await ds.repo.isAncestor(local, remoteHead))) {
    await ds.repo.moveRef(ds.ref, remoteHead, local, `minipach: fast-forward to ${ds.remote}/${ds.branch}`);
    return local ? followInWorkingTree(ds, local, remoteHead, WITH_FILTER) : undefined;
  }
  // Local is ahead: an earlier publish pushed nothing (the remote was unreachable). Push it now.
  if (await ds.repo.isAncestor(remoteHead, local)) {
    await pushBranch(ds, local);
    return undefined;
  }
  throw new BranchDivergedError(ds, local, remoteHead);
}

/**
 * Moves the branch from `expected` to `tip`. Throws BranchMovedError when somebody got there first (the
 * caller re-plans on the new head and integrates again).
 */
export async function publishBranch(ds: Dataset, tip: string, expected: string, reason: string, { writesAnnexPointers = WITH_FILTER }: PublishOptions = {}): Promise<string | undefined> {
  if (ds.remote) await pushBranch(ds, tip);
  await ds.repo.moveRef(ds.ref, tip, expected, reason);
  const annexWarning = ds.remote && ds.storage ? await pushAnnexBranch(ds) : undefined;
  return [await followInWorkingTree(ds, expected, tip, writesAnnexPointers), annexWarning].filter(Boolean).join('; ') || undefined;
}

/** Commits of unknown content (someone's push): they may write unlocked annexed files. */
const WITH_FILTER = async () => true;

export interface PublishOptions {
  /**
   * Whether the new commits write an unlocked annexed file (a pointer file), asked only when a working tree
   * follows the branch. When they do not, it follows without git-annex's filter: with it, git hands every
   * file written in the same second as the index to git-annex again at the next update (git's racy-clean
   * check), 2-3 ms a file, which made moving the working tree most of an integration's time.
   */
  readonly writesAnnexPointers?: () => Promise<boolean>;
}

/**
 * With storage the content is in a bucket, and only the git-annex branch says so: it goes to the remote
 * after the branch, so a clone of the remote finds every result's content (`datalad get`). Merged with the
 * remote's first (people push theirs too); a push that loses a race is tried again. A failure is a warning:
 * the next publish pushes what this one did not.
 */
async function pushAnnexBranch(ds: Dataset): Promise<string | undefined> {
  let message = '';
  for (let i = 0; i < 4; i++) {
    await ds.annex.mergeBranches();
    const r = await ds.repo.push(ds.remote!, ['refs/heads/git-annex:refs/heads/git-annex']);
    if (r.status === 'ok') return undefined;
    message = r.message;
    if (r.status !== 'rejected') break;
    await ds.repo.fetch(ds.remote!, [`+refs/heads/git-annex:refs/remotes/${ds.remote}/git-annex`]);
  }
  return `could not push the git-annex branch (where results' content is) to ${ds.remote}: ${message}; the next integration tries again`;
}

async function pushBranch(ds: Dataset, tip: string): Promise<void> {
  const r = await ds.repo.push(ds.remote!, [`${tip}:${ds.ref}`]);
  if (r.status === 'ok') return ds.repo.setRef(`refs/remotes/${ds.remote}/${ds.branch}`, tip);
  if (r.status === 'rejected') throw new BranchMovedError(`${ds.remote}/${ds.branch}`, tip);
  throw new MinipachError(`could not push results to ${ds.remote} ${ds.branch} from ${ds.dir}: ${r.message}`);
}

/**
 * The dataset's remote as workers and hooks see it: its URL, with a relative path made absolute (relative
 * to the clone), and, when it is a repository on this machine, its git dir. Undefined: no such remote.
 */
export async function remoteLocation(ds: Dataset): Promise<{ url: string; localGitDir?: string } | undefined> {
  const raw = ds.remote && (await ds.repo.remoteUrl(ds.remote));
  if (!raw) return undefined;
  const remoteUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) && !raw.startsWith('file://');
  const scpLike = /^[^/]+@[^:]+:/.test(raw);
  if (remoteUrl || scpLike) return { url: raw };
  const url = path.resolve(ds.dir, raw.replace(/^file:\/\//, ''));
  const localGitDir = await new GitRepo(url).gitDir().catch(() => undefined);
  return { url, localGitDir };
}

/** Fetches the run commits workers handed in to the remote. */
export async function fetchRunRefs(ds: Dataset): Promise<void> {
  if (!ds.remote) return;
  const f = await ds.repo.fetch(ds.remote, [RUN_REFSPEC]);
  if (!f.ok) throw new MinipachError(`could not fetch run results from ${ds.remote} in ${ds.dir}: ${f.message}`);
}

/** Deletes handed-in run refs once their results are on the branch (here, and where they were handed in: `remote`). Best effort. */
export async function dropRunRefs(ds: Dataset, keys: readonly string[], remote = ds.remote): Promise<void> {
  if (!keys.length) return;
  await ds.repo.deleteRefs(keys.map(runRef));
  if (remote) await ds.repo.push(remote, keys.map((k) => `:${runRef(k)}`));
}

/**
 * When the branch is checked out here, update index and files from the old head to the new one; local
 * changes are kept, and a conflicting one stops the update with a message saying what to do.
 */
async function followInWorkingTree(ds: Dataset, oldHead: string, newHead: string, writesAnnexPointers: () => Promise<boolean>): Promise<string | undefined> {
  if (ds.bare || (await ds.repo.currentBranch()) !== ds.branch) return undefined;
  const refused = await ds.repo.followCheckout(oldHead, newHead, { annexFilter: await writesAnnexPointers() });
  if (refused === undefined) return undefined;
  return (
    `the branch ${ds.branch} moved to ${newHead.slice(0, 12)}, but your working tree has uncommitted changes that conflict ` +
    `with the new results, so it was left as it was (${refused}). Commit or stash your changes, then run: ` +
    `git read-tree -m -u ${oldHead.slice(0, 12)} HEAD`
  );
}
