/**
 * The committer: the only writer of the branch. It turns results into commits with git plumbing (a private
 * index, write-tree, commit-tree) and moves the branch only from the head it built on (branch.ts), so
 * nobody's commit is ever dropped: if the branch moved meanwhile it refuses, and the scheduler re-plans.
 * A working tree that has the branch checked out then follows, as a fast-forward would.
 */
import { BranchMovedError } from '../core/errors.js';
import type { CommitSpec, TreeChange } from '../adapters/git.js';
import type { OutputEntry } from '../exec/outcome.js';
import { publishBranch } from './branch.js';
import { faultPoint } from '../adapters/fault.js';
import { datumLabel } from '../core/datum-label.js';
import { isAnnexPointer, MAX_POINTER_SIZE, retargetAnnexLink } from '../core/content-key.js';
import { datumOutputs, inputFingerprints, markerContent, type TransformIdentity } from '../core/identity.js';
import type { DatumPlan } from '../core/plan.js';
import { formatBatchMessage, formatRunMessage, transformFields, type DataladRunRecord, type LinkEntry, type MinipachRunFields, type RemoveEntry } from '../core/record.js';
import type { ResourceUsage, ResultRecord } from '../core/result-index.js';
import { MODE_SYMLINK } from '../core/tree.js';
import type { Dataset } from '../adapters/dataset.js';
import { resultOutputs } from './index-store.js';
import { addSharedResults, pushSharedResults, RESULTS_REF, type SharedResult } from './shared-ref.js';

export interface ComputedResult {
  readonly plan: DatumPlan;
  readonly transform: TransformIdentity;
  /** The run commit the outputs come from (in this repository: handed in by a worker, or made here). */
  readonly commit: string;
  /** The datum's output files, from the run commit or (with their bytes) from the native executor. */
  readonly outputs: readonly OutputEntry[];
  readonly record: DataladRunRecord;
  readonly resources: ResourceUsage;
}

export interface LinkRequest {
  readonly plan: DatumPlan;
  readonly transform: TransformIdentity;
  readonly source: ResultRecord;
}

export interface Integrated {
  readonly head: string;
  /** Datum label (core/datum-label.ts) -> the commit that put its outputs on the branch. */
  readonly commits: ReadonlyMap<string, string>;
  /** Set when the checked-out working tree could not follow the branch. */
  readonly worktreeWarning?: string;
  /** Set when the results ref could not be pushed to the dataset's remote. */
  readonly shareWarning?: string;
}

export class Committer {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly ds: Dataset) {}

  /**
   * Integrates results on top of `head`, the commit they were planned at; calls are serialised, so there
   * is one writer even with concurrent callers. Throws BranchMovedError when the branch is no longer at
   * `head`: results are only valid against the plan they came from, so the caller re-plans and retries
   * (a result whose datum key still matches is integrated again without recomputation).
   */
  integrate(head: string, computed: readonly ComputedResult[], links: readonly LinkRequest[], removals: readonly DatumPlan[]): Promise<Integrated> {
    const next = this.chain.then(() => this.integrateNow(head, computed, links, removals));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async integrateNow(head: string, computed: readonly ComputedResult[], links: readonly LinkRequest[], removals: readonly DatumPlan[]): Promise<Integrated> {
    const repo = this.ds.repo;
    if ((await repo.resolve(this.ds.ref)) !== head) throw new BranchMovedError(this.ds.ref, head);
    const linkTrees = await this.linkedEntries(links);
    // A datum's old outputs go with its directory; a root datum's directory is the pipeline's own, which
    // keeps spec.yml and the bookkeeping dir, so its old outputs are listed instead (one ls-tree for all).
    const roots = [...computed.map((c) => c.plan), ...links.map((l) => l.plan), ...removals].filter((p) => p.outputDir === p.pipeline);
    const rootTree = roots.length ? await repo.lsTree(head, [...new Set(roots.map((p) => p.outputDir))]) : [];
    const clear = (p: DatumPlan): TreeChange[] =>
      p.outputDir === p.pipeline ? datumOutputs(rootTree, p.pipeline, p.outputDir).map((e) => ({ path: e.path, remove: true as const })) : [{ path: p.outputDir, remove: true }];
    const marker = (p: DatumPlan): TreeChange => ({ path: p.marker, mode: '100644', content: markerContent(p.pipeline, p.name, p.key) });

    const fields = computed.map((c) => runFields(c));
    const specs: CommitSpec[] = computed.map((c, i) => ({
      changes: [...clear(c.plan), ...c.outputs.map((e): TreeChange => (e.content ? { path: e.path, mode: e.mode, content: e.content } : { path: e.path, mode: e.mode, oid: e.oid })), marker(c.plan)],
      message: formatRunMessage(c.record, fields[i]!),
    }));
    if (links.length || removals.length) {
      specs.push({
        changes: [...links.flatMap((l) => [...clear(l.plan), ...linkTrees.get(l.plan.marker)!, marker(l.plan)]), ...removals.flatMap((r) => [...clear(r), { path: r.marker, remove: true as const }])],
        message: formatBatchMessage(links.map(linkEntry), removals.map((r): RemoveEntry => ({ pipeline: r.pipeline, datum: r.name, key: r.key }))),
      });
    }
    // One fast-import writes every commit of this integration: a bounded number of processes for K results.
    const ids = await repo.writeCommits(head, specs);
    const commits = new Map<string, string>();
    computed.forEach((c, i) => commits.set(datumLabel(c.plan.pipeline, c.plan.name), ids[i]!));
    for (const p of [...links.map((l) => l.plan), ...removals]) commits.set(datumLabel(p.pipeline, p.name), ids.at(-1)!);
    const tip = ids.at(-1) ?? head;
    if (tip === head) return { head, commits };
    await faultPoint('integrate:before-publish');
    const worktreeWarning = await publishBranch(this.ds, tip, head, `minipach: integrate ${computed.length + links.length + removals.length} datums`, { writesAnnexPointers: () => this.writesAnnexPointers(specs) });
    await faultPoint('integrate:after-publish');
    // The results are on the branch (its history is the durable index); the results ref is the shared
    // copy, and one lost here is restored by `minipach reindex`.
    const shared = computed.map((c, i): SharedResult => ({ record: { ...fields[i]!, run_commit: ids[i]! }, outputs: c.outputs, outputDir: c.plan.outputDir }));
    const shareWarning = await this.share(shared);
    return { head: tip, commits, worktreeWarning, shareWarning };
  }

  /** Adds results to the shared results ref (and pushes it, with a remote). A problem is a warning: the branch already holds them. */
  private async share(shared: readonly SharedResult[]): Promise<string | undefined> {
    if (!shared.length) return undefined;
    try {
      await addSharedResults(this.ds, shared);
    } catch (e) {
      return `${(e as Error).message}; the results are on the branch, and minipach reindex adds them to ${RESULTS_REF}`;
    }
    return this.ds.remote ? pushSharedResults(this.ds, this.ds.remote) : undefined;
  }

  /**
   * Whether a regular file the commits write may be an unlocked annexed file's pointer (branch.ts
   * PublishOptions). Markers and the native executor's outputs carry their bytes; other blobs are sized,
   * and those small enough to be a pointer read: two processes at most.
   */
  private async writesAnnexPointers(specs: readonly CommitSpec[]): Promise<boolean> {
    const unread = new Set<string>();
    for (const c of specs.flatMap((s) => s.changes)) {
      if ('remove' in c || (c.mode !== '100644' && c.mode !== '100755')) continue;
      if (!('content' in c)) unread.add(c.oid);
      else if (isAnnexPointer(c.content)) return true;
    }
    const small = [...(await this.ds.repo.objectSizes([...unread]))].filter(([, size]) => size <= MAX_POINTER_SIZE).map(([oid]) => oid);
    return small.length > 0 && [...(await this.ds.repo.readBlobs(small)).values()].some(isAnnexPointer);
  }

  /**
   * Marker -> the source result's outputs, placed at the linking datum's path (annex links re-pointed for
   * the new depth, written with the commit). The sources' trees and link targets are read in one go.
   */
  private async linkedEntries(links: readonly LinkRequest[]): Promise<Map<string, TreeChange[]>> {
    const outputs = await resultOutputs(this.ds, links.map((l) => l.source));
    const symlinks = [...outputs.values()].flatMap((o) => o.entries.filter((e) => e.mode === MODE_SYMLINK));
    const targets = await this.ds.repo.readBlobs(symlinks.map((e) => e.oid));
    const placed = new Map<string, TreeChange[]>();
    for (const l of links) {
      const { entries, dir: srcDir } = outputs.get(l.source)!;
      placed.set(
        l.plan.marker,
        entries.map((e): TreeChange => {
          const rel = srcDir === e.path ? '' : e.path.slice(srcDir.length + 1);
          const dest = rel ? `${l.plan.outputDir}/${rel}` : l.plan.outputDir;
          const target = targets.get(e.oid)?.toString('utf8');
          if (e.mode === MODE_SYMLINK && target !== undefined) {
            const retargeted = retargetAnnexLink(target, dest);
            if (retargeted !== target) return { path: dest, mode: e.mode, content: retargeted };
          }
          return { path: dest, mode: e.mode, oid: e.oid };
        }),
      );
    }
    return placed;
  }
}

/** minipach's fields of a computed result's run record. */
function runFields(c: ComputedResult): MinipachRunFields {
  return {
    version: 1,
    pipeline: c.plan.pipeline,
    datum: c.plan.name,
    key: c.plan.key,
    transform_key: c.transform.key,
    transform: transformFields(c.transform),
    inputs: inputFingerprints(c.plan.datum!),
    resources: c.resources,
    join_key: c.plan.datum!.joinKey,
    group_key: c.plan.datum!.groupKey,
  };
}

function linkEntry(l: LinkRequest): LinkEntry {
  return {
    pipeline: l.plan.pipeline,
    datum: l.plan.name,
    key: l.plan.key,
    source: { pipeline: l.source.pipeline, datum: l.source.datum },
    run_commit: l.source.runCommit,
    transform_key: l.transform.key,
    inputs: inputFingerprints(l.plan.datum!),
  };
}
