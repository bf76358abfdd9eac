/**
 * What a datum waits for upstream. A plan changes parts of pipelines' outputs (computes, links, removals);
 * a datum reading such a part, or reading a part that waits on one further up, waits too: through any
 * chain, so nothing is computed over partial data, and the reason names the datum at the root of it (the
 * one being computed, or the one that failed).
 */
import type { Datum } from './datums.js';
import { datumLabel } from './datum-label.js';
import { matchGlob } from './glob.js';
import { markerPath, outputDir } from './identity.js';
import type { DatumPlan } from './datum-plan.js';
import type { FailureRecord } from './result-index.js';
import { pfsInputs, type InputSpec, type PipelineSpec } from './spec.js';
import { isAtOrBelow, OverlapIndex } from './tree.js';

/**
 * A part of a pipeline's outputs that this plan will change, or that waits on a change upstream: readers
 * of it must wait. `cause` is the datum at the root of it (the one being computed, or failed), named in
 * the reason of every datum blocked behind it, however far downstream.
 */
export interface Unsettled {
  readonly dir: string;
  readonly cause: DatumPlan;
}

/**
 * Unsettled parts of upstream outputs, indexed by directory: a plan asks for each of its (up to 10^5)
 * datums, against up to 10^5 of them, so a scan would be quadratic.
 */
export class UnsettledIndex {
  /** Dir -> the position of its first unsettled part (earlier parts win, as a scan would find them). */
  private readonly index: OverlapIndex<number>;
  constructor(readonly all: readonly Unsettled[]) {
    this.index = new OverlapIndex(all.map((u, i) => [u.dir, i] as const));
  }

  /** The first unsettled part the datum reads (anything at or below it, or all of it from above). */
  readBy(datum: Datum): Unsettled | undefined {
    if (!this.all.length) return undefined;
    let first: number | undefined;
    for (const i of datum.inputs) {
      const at = this.index.overlapping(i.path);
      if (at !== undefined && (first === undefined || at < first)) first = at;
    }
    return first === undefined ? undefined : this.all[first];
  }
}

/** A datum blocked behind `cause`: the action, the reason that names the cause, and the cause itself. */
export function blockedBehind(cause: DatumPlan, failures: ReadonlyMap<string, FailureRecord>): Pick<DatumPlan, 'action' | 'reason' | 'waitsOn'> {
  const failure = failures.get(cause.key);
  const datum = datumLabel(cause.pipeline, cause.name);
  const failed = failure !== undefined && cause.action === 'compute';
  const reason = failed ? `upstream ${datum} failed${failure.exit !== undefined ? ` (exit ${failure.exit})` : ''}` : `waiting for upstream ${datum} (${cause.action})`;
  return { action: 'blocked', reason, waitsOn: { datum, failed } };
}

/** What a pipeline waits for that no datum of it reads yet (awaitedDatums). */
export interface Awaited {
  /** The datums that will appear, listed as blocked. */
  readonly plans: DatumPlan[];
  /** The parts of the pipeline's outputs they (or unforeseeable ones) will change. */
  readonly unsettled: Unsettled[];
  /** Upstream datums (labels) whose results may add datums here that cannot be named in advance. */
  readonly unforeseen: string[];
}

/**
 * Upstream changes no datum of this pipeline reads yet, because the outputs they will make do not exist
 * yet (a new subject upstream): the datums they will make here wait too, so that nothing downstream is
 * computed over partial data. For a single pfs input the glob says which datum that will be, and it is
 * listed as blocked; otherwise the whole pipeline's outputs count as unsettled, and a note says so.
 */
export function awaitedDatums(spec: PipelineSpec, datums: readonly Datum[], named: readonly { readonly name: string }[], upstream: readonly Unsettled[], failures: ReadonlyMap<string, FailureRecord>): Awaited {
  const out: Awaited = { plans: [], unsettled: [], unforeseen: [] };
  if (!upstream.length) return out;
  const listed = new Set(named.map((n) => n.name));
  const read = new OverlapIndex(datums.flatMap((d) => d.inputs.map((i) => [i.path, true] as const)));
  for (const u of upstream) {
    if (read.overlapping(u.dir)) continue;
    const name = awaitedDatumName(spec.input, u.dir);
    if (name === null) continue;
    if (name === undefined) {
      out.unsettled.push({ dir: spec.name, cause: u.cause });
      out.unforeseen.push(datumLabel(u.cause.pipeline, u.cause.name));
      continue;
    }
    const dir = outputDir(spec.name, name);
    out.unsettled.push({ dir, cause: u.cause });
    if (listed.has(name)) continue;
    listed.add(name);
    out.plans.push({ pipeline: spec.name, name, key: '', ...blockedBehind(u.cause, failures), outputDir: dir, marker: markerPath(spec.name, name) });
  }
  return out;
}

/** A character no path holds: stands for "some file" below a directory that does not exist yet. */
const SOME_FILE = '\0';

/**
 * The name of the datum an input will make from outputs that are to appear in `dir`: null when the input
 * will not read them, undefined when that cannot be told in advance (a combinator, `**`, the whole repo).
 */
function awaitedDatumName(input: InputSpec, dir: string): string | null | undefined {
  if (input.kind !== 'pfs') return pfsInputs(input).some((i) => isAtOrBelow(dir, i.repo) || isAtOrBelow(i.repo, dir)) ? undefined : null;
  if (!isAtOrBelow(dir, input.repo) && !isAtOrBelow(input.repo, dir)) return null;
  if (dir === input.repo || !isAtOrBelow(dir, input.repo)) return undefined;
  if (input.glob.isRoot) return '';
  const hit = matchGlob(input.glob, [`${dir.slice(input.repo.length + 1)}/${SOME_FILE}`], (rel) => rel)[0];
  if (!hit) return null;
  return hit.match.path.includes(SOME_FILE) ? undefined : hit.match.path;
}
