/**
 * The shared result index: `refs/minipach/results`, a ref that travels with the dataset's git remote, so a
 * second clone (or a clone on another branch) reuses what a colleague already computed.
 *
 * Each commit's tree holds one directory per datum key, `<key[0:2]>/<key>/`, with `record.json` (the
 * result's record) and `out/` (its output files: annex symlinks and git blobs, exactly as committed). Keeping
 * the outputs' tree in the ref means fetching it brings everything needed to link the result (the annex
 * symlinks name the keys; git-annex brings the content from wherever it is). The run commits are parents of
 * the commit that adds them, so `explain` and `datalad rerun` of a reused result work on the fetching clone.
 * Per-key directories make two clones' refs merge as a plain union (a key is a pure function of inputs and
 * transform: two results for one key are interchangeable, and the first one kept wins).
 *
 * Remote copies are fetched to `refs/minipach/remotes/<remote>/results`; the index reads them all.
 */
import { MinipachError } from '../core/errors.js';
import type { LsTreeEntry, TreeChange } from '../adapters/git.js';
import type { InputFingerprint } from '../core/identity.js';
import type { ResourceUsage, ResultRecord, TransformFields } from '../core/result-index.js';
import type { Dataset } from '../adapters/dataset.js';
import { datumLabel } from '../core/datum-label.js';

export const RESULTS_REF = 'refs/minipach/results';
const REMOTE_RESULTS_PREFIX = 'refs/minipach/remotes/';

/** What `record.json` holds. */
export interface SharedRecord {
  readonly version: 1;
  readonly key: string;
  readonly pipeline: string;
  readonly datum: string;
  readonly run_commit: string;
  readonly transform_key: string;
  readonly transform?: TransformFields;
  readonly inputs: readonly InputFingerprint[];
  readonly resources?: ResourceUsage;
}

export interface SharedResult {
  readonly record: SharedRecord;
  /** The datum's output files in the run commit, and the directory they are in. */
  readonly outputs: readonly LsTreeEntry[];
  readonly outputDir: string;
}

const keyDir = (key: string) => `${key.slice(0, 2)}/${key}`;
const RECORD_FILE = /^[0-9a-f]{2}\/[0-9a-f]+\/record\.json$/;

/** Every results ref this clone has: its own and the remotes' copies. */
export async function resultRefs(ds: Dataset): Promise<{ ref: string; commit: string }[]> {
  return (await ds.repo.refs([RESULTS_REF, REMOTE_RESULTS_PREFIX])).filter(({ ref }) => ref === RESULTS_REF || ref.endsWith('/results'));
}

/** The datum keys a results commit holds (of `candidates` only, when given: no need to list them all). */
async function keysIn(ds: Dataset, commit: string | undefined, candidates?: readonly string[]): Promise<Set<string>> {
  if (!commit) return new Set();
  const paths: string[] = [];
  if (!candidates) paths.push(...(await ds.repo.lsTreeDirs(commit)));
  else for (const batch of chunks(candidates.map(keyDir), 1000)) paths.push(...(await ds.repo.lsTreeDirs(commit, batch)));
  return new Set(paths.filter((p) => /^[0-9a-f]{2}\/[0-9a-f]+$/.test(p)).map((p) => p.slice(3)));
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/**
 * Reads the records of a results commit, as index records whose outputs are read from that commit: all of
 * them, or only those added since `since` (an ancestor), so a growing ref is not read again and again.
 */
export async function readSharedRecords(ds: Dataset, commit: string, since?: string): Promise<ResultRecord[]> {
  let recordEntries: { oid: string }[];
  if (since) {
    recordEntries = (await ds.repo.addedFiles(since, commit)).filter((e) => RECORD_FILE.test(e.path));
  } else {
    recordEntries = (await ds.repo.lsTree(commit)).filter((e) => RECORD_FILE.test(e.path));
  }
  const blobs = await ds.repo.readBlobs(recordEntries.map((e) => e.oid));
  const out: ResultRecord[] = [];
  for (const e of recordEntries) {
    let r: SharedRecord;
    try {
      r = JSON.parse(blobs.get(e.oid)?.toString('utf8') ?? '') as SharedRecord;
    } catch {
      continue; // a record this version cannot read is skipped, never guessed
    }
    if (r.version !== 1) continue;
    out.push({
      key: r.key,
      pipeline: r.pipeline,
      datum: r.datum,
      kind: 'computed',
      commit: r.run_commit,
      runCommit: r.run_commit,
      transformKey: r.transform_key,
      transform: r.transform,
      inputs: r.inputs,
      resources: r.resources,
      outputsAt: { commit, dir: `${keyDir(r.key)}/out` },
    });
  }
  return out;
}

/**
 * Adds results to the local results ref (keys it already holds are left as they are). Several processes
 * may share a clone, so the ref moves with a compare-and-swap, rebuilt on the new tip when it lost.
 */
export async function addSharedResults(ds: Dataset, results: readonly SharedResult[]): Promise<void> {
  if (!results.length) return;
  for (let attempt = 0; attempt < 10; attempt++) {
    const tip = await ds.repo.resolve(RESULTS_REF);
    const have = await keysIn(ds, tip, results.map((r) => r.record.key));
    const fresh = [...new Map(results.filter((r) => !have.has(r.record.key)).map((r) => [r.record.key, r])).values()];
    if (!fresh.length) return;
    const changes: TreeChange[] = [];
    for (const r of fresh) {
      const dir = keyDir(r.record.key);
      changes.push({ path: `${dir}/record.json`, mode: '100644', content: JSON.stringify(r.record, null, 1) + '\n' });
      for (const e of r.outputs) changes.push({ path: `${dir}/out/${e.path.slice(r.outputDir.length + 1)}`, mode: e.mode, oid: e.oid });
    }
    const runCommits = [...new Set(fresh.map((r) => r.record.run_commit))];
    const message = `minipach results: ${fresh.length} result${fresh.length === 1 ? '' : 's'}\n\n${fresh.map((r) => `  ${datumLabel(r.record.pipeline, r.record.datum)} ${r.record.key.slice(0, 12)}`).join('\n')}\n`;
    const [commit] = await ds.repo.writeCommits(tip, [{ changes, message, otherParents: runCommits }]);
    if (await ds.repo.casRef(RESULTS_REF, commit!, tip, 'minipach: results')) return;
  }
  throw new MinipachError(`could not update ${RESULTS_REF} in ${ds.dir}: it kept moving under concurrent writers`);
}

/** Fetches the remote's results ref into its remote-tracking copy; the glob makes a remote without one fine. */
export const remoteResultsRefspec = (remote: string) => `+${RESULTS_REF}*:${REMOTE_RESULTS_PREFIX}${remote}/results*`;

/** Fetches a remote's results ref (a remote without one is fine). Returns an error message, or undefined. */
export async function fetchSharedResults(ds: Dataset, remote: string): Promise<string | undefined> {
  // Never prompt for credentials, and give up on an unreachable remote rather than hang a plan on it.
  const r = await ds.repo.fetch(remote, [remoteResultsRefspec(remote)], { noTags: true, noPrompt: true, timeoutMs: FETCH_TIMEOUT_MS });
  if (r.timedOut) return `could not fetch ${RESULTS_REF} from ${remote} within ${FETCH_TIMEOUT_MS / 1000} s; using what was fetched before`;
  return r.ok ? undefined : `could not fetch ${RESULTS_REF} from ${remote}: ${r.message.split('\n').slice(-1)[0]}`;
}

const FETCH_TIMEOUT_MS = 20_000;

/** Fetches the results refs of every git remote of the clone; returns what could not be fetched. */
export async function fetchAllSharedResults(ds: Dataset): Promise<string[]> {
  const problems = await Promise.all((await ds.repo.remotes()).map((r) => fetchSharedResults(ds, r)));
  return problems.filter((p): p is string => p !== undefined);
}

/** A reminder when some git remote's results ref (as last fetched) lacks results of this clone, or none. */
export async function sharingReminder(ds: Dataset): Promise<string | undefined> {
  const tip = await ds.repo.resolve(RESULTS_REF);
  if (!tip) return undefined;
  const unshared: string[] = [];
  for (const r of await ds.repo.remotes()) {
    const theirs = await ds.repo.resolve(`${REMOTE_RESULTS_PREFIX}${r}/results`);
    if (!theirs || !(await ds.repo.isAncestor(tip, theirs))) unshared.push(r);
  }
  return unshared.length ? `results not shared with ${unshared.join(', ')} yet; to let other clones reuse them: minipach share (pushes ${RESULTS_REF})` : undefined;
}

/**
 * Merges the remote's copy into the local ref and pushes it (never forced: if somebody pushed meanwhile,
 * fetch, merge and try again). Returns an error message, or undefined.
 */
export async function pushSharedResults(ds: Dataset, remote: string): Promise<string | undefined> {
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const fetchProblem = await fetchSharedResults(ds, remote);
    if (fetchProblem) return fetchProblem;
    await mergeSharedResults(ds, `${REMOTE_RESULTS_PREFIX}${remote}/results`);
    const tip = await ds.repo.resolve(RESULTS_REF);
    if (!tip) return undefined;
    const r = await ds.repo.push(remote, [`${tip}:${RESULTS_REF}`]);
    if (r.status === 'ok') {
      await ds.repo.setRef(`${REMOTE_RESULTS_PREFIX}${remote}/results`, tip);
      return undefined;
    }
    last = r.message;
  }
  return `could not push ${RESULTS_REF} to ${remote}: ${last}`;
}

/** Makes the local results ref hold the union of itself and `other` (a merge commit; nothing when one contains the other). */
export async function mergeSharedResults(ds: Dataset, other: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const theirs = await ds.repo.resolve(other);
    const ours = await ds.repo.resolve(RESULTS_REF);
    if (!theirs || theirs === ours) return;
    let next: string;
    if (!ours || (await ds.repo.isAncestor(ours, theirs))) next = theirs;
    else if (await ds.repo.isAncestor(theirs, ours)) return;
    else {
      const have = await keysIn(ds, ours);
      const add = (await ds.repo.lsTree(theirs)).filter((e) => {
        const [, key] = e.path.split('/');
        return key !== undefined && !have.has(key);
      });
      next = await ds.repo.commitChanges(ours, add.map((e) => ({ path: e.path, mode: e.mode, oid: e.oid })), `minipach results: merge ${other}\n`, [theirs]);
    }
    if (await ds.repo.casRef(RESULTS_REF, next, ours, `minipach: merge ${other}`)) return;
  }
  throw new MinipachError(`could not merge ${other} into ${RESULTS_REF} in ${ds.dir}: it kept moving`);
}
