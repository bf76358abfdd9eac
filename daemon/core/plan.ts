/**
 * The plan: a pure function of a tree snapshot, the specs found in it and the result index. No git, no
 * Redis, no processes. Every datum gets an action and a reason, in the spirit of Pachyderm's skip rule
 * ("skip a datum if it is current and succeeded before") and redun's explained cache misses.
 */
import { SpecError } from './errors.js';
import { createDatums, DatumCollision, type Datum, type RepoView } from './datums.js';
import {
  BOOKKEEPING_DIR,
  datumKey,
  datumNameOfMarker,
  inputFingerprints,
  markerOid,
  markersByDatum,
  MissingCodePath,
  outputDir,
  transformIdentity,
  type InputFingerprint,
  type TransformIdentity,
} from './identity.js';
import type { FailureRecord, ResultIndex, ResultRecord } from './result-index.js';
import { pfsInputs, SPEC_FILE, type PipelineSpec } from './spec.js';
import { PlannedDatum, type DatumPlan } from './datum-plan.js';
import { awaitedDatums, blockedBehind, UnsettledIndex, type Unsettled } from './upstream.js';
import { entriesUnder, isAtOrBelow, type TreeEntry, type TreeSnapshot } from './tree.js';
import { datumLabel } from './datum-label.js';
import { ImageError, type ContainerDef } from './container.js';
import { KeyMemoLookup, pipelineSignature, type KeyMemo } from './key-memo.js';

export type { Action, DatumPlan } from './datum-plan.js';

export type PipelineStatus = 'ready' | 'invalid' | 'disabled';

export interface PipelinePlan {
  readonly name: string;
  readonly file: string;
  readonly status: PipelineStatus;
  /** Why the pipeline is invalid or disabled. */
  readonly error?: SpecError;
  readonly notes: readonly string[];
  /** Upstream datums (labels) whose results may add datums here that cannot be named yet (see core/upstream.ts). */
  readonly unforeseen?: readonly string[];
  readonly upstream: readonly string[];
  readonly spec?: PipelineSpec;
  readonly transform?: TransformIdentity;
  readonly datums: readonly DatumPlan[];
}

export interface Plan {
  readonly commit: string;
  /** In dependency order: a pipeline comes after every pipeline it reads. */
  readonly pipelines: readonly PipelinePlan[];
  /** How many datum keys were hashed (the others came from the memo). */
  readonly hashed: number;
}

export interface PlanInput {
  readonly snapshot: TreeSnapshot;
  /** Pipeline name -> its spec, or the error that disables it. */
  readonly specs: ReadonlyMap<string, PipelineSpec | SpecError>;
  readonly index: ResultIndex;
  /** Keys of an earlier plan, for datums whose inputs did not change since. */
  readonly memo?: KeyMemo;
  /** Containers `.datalad/config` registers at this commit, for specs with `transform.image`. */
  readonly containers?: ReadonlyMap<string, ContainerDef>;
}

export function planDataset({ snapshot, specs, index, memo, containers = new Map() }: PlanInput): Plan {
  const names = [...specs.keys()].sort();
  const upstreamOf = new Map(names.map((n) => [n, upstreamPipelines(specs.get(n)!, names)] as const));
  const order = topologicalOrder(names, upstreamOf);
  const outputs = new PipelineOutputs(snapshot);
  const byName = new Map<string, PipelinePlan>();
  const pendingByKey = new Map<string, DatumPlan>();
  const previous = new PreviousResults(index);
  // Only pipelines something reads need their unsettled outputs listed (10^5 of them, else for nothing).
  const unsettled = new Map<string, readonly Unsettled[]>();
  const read = new Set(names.flatMap((n) => upstreamOf.get(n)!));
  const keys = { memo: memo ? new KeyMemoLookup(memo) : undefined, hashed: 0 };

  for (const name of [...order.sorted, ...order.cyclic]) {
    const spec = specs.get(name)!;
    const file = `${name}/${SPEC_FILE}`;
    const upstream = upstreamOf.get(name)!;
    const base = { name, file, upstream, datums: [] as DatumPlan[] };
    if (spec instanceof SpecError) {
      byName.set(name, { ...base, status: 'invalid', error: spec, notes: [] });
      continue;
    }
    if (order.cyclic.includes(name)) {
      const err = new SpecError(file, undefined, 'input', `pipelines ${order.cyclic.join(', ')} read each other in a cycle`, 'pipelines must form a DAG');
      byName.set(name, { ...base, status: 'invalid', error: err, notes: [], spec });
      continue;
    }
    const badUp = upstream.find((u) => byName.get(u)!.status !== 'ready');
    if (badUp) {
      const err = new SpecError(file, undefined, 'input', `upstream pipeline "${badUp}" is ${byName.get(badUp)!.status}`, `fix ${badUp}/${SPEC_FILE} first`);
      byName.set(name, { ...base, status: 'disabled', error: err, notes: [...spec.notes], spec });
      continue;
    }
    try {
      byName.set(name, planPipeline(spec, upstream, { snapshot, index, outputs, byName, pendingByKey, previous, unsettled, read, keys, containers }));
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      byName.set(name, { ...base, status: 'invalid', error: e, notes: [...spec.notes], spec });
    }
  }
  return { commit: snapshot.commit, pipelines: order.sorted.concat(order.cyclic).map((n) => byName.get(n)!), hashed: keys.hashed };
}

interface PlanContext {
  readonly snapshot: TreeSnapshot;
  readonly index: ResultIndex;
  readonly outputs: PipelineOutputs;
  readonly byName: ReadonlyMap<string, PipelinePlan>;
  /** Datum key -> the first datum of this plan that computes it; later ones link to it. */
  readonly pendingByKey: Map<string, DatumPlan>;
  readonly previous: PreviousResults;
  /** Pipeline -> the parts of its outputs that are about to change (or cannot, their cause having failed). */
  readonly unsettled: Map<string, readonly Unsettled[]>;
  /** The pipelines some pipeline reads. */
  readonly read: ReadonlySet<string>;
  /** Where datum keys come from: the memo when it holds, else hashing (counted). */
  readonly keys: { readonly memo?: KeyMemoLookup; hashed: number };
  readonly containers: ReadonlyMap<string, ContainerDef>;
}


function planPipeline(spec: PipelineSpec, upstream: readonly string[], ctx: PlanContext): PipelinePlan {
  const { snapshot, index, outputs } = ctx;
  let transform: TransformIdentity;
  try {
    transform = transformIdentity(spec, snapshot, ctx.containers);
  } catch (e) {
    if (e instanceof ImageError) throw new SpecError(spec.file, undefined, 'transform.image', e.message, e.hint);
    if (e instanceof MissingCodePath) {
      throw new SpecError(spec.file, undefined, `transform.code[${e.index}]`, `"${e.path}" does not exist in commit ${snapshot.commit.slice(0, 12)}`, 'commit the file or fix the path');
    }
    throw e;
  }
  const seen = new Map<string, readonly TreeEntry[]>();
  const view: RepoView = (repo) => {
    let entries = seen.get(repo);
    if (!entries) {
      const owner = upstream.find((u) => isAtOrBelow(repo, u));
      entries = entriesUnder(snapshot, repo);
      if (owner !== undefined) entries = entries.filter((e) => outputs.isOutput(owner, e.path));
      seen.set(repo, entries);
    }
    return entries;
  };
  let datums: Datum[];
  try {
    datums = createDatums(spec.input, view);
  } catch (e) {
    if (e instanceof DatumCollision) {
      throw new SpecError(spec.file, undefined, 'input', `datums ${describe(e.first)} and ${describe(e.second)} would both write ${outputDir(spec.name, e.datumName)}/`, 'use globs that give each datum a name of its own');
    }
    throw e;
  }
  checkOutputDirs(spec, datums);

  const notes = [...spec.notes];
  for (const inp of pfsInputs(spec.input)) {
    if (!view(inp.repo).length) notes.push(`input ${inp.name}: repo "${inp.repo}" has no files${upstream.some((u) => isAtOrBelow(inp.repo, u)) ? ' yet (its pipeline has no outputs)' : ''}`);
  }
  if (!datums.length) notes.push('the input matches no datums');

  // Upstream outputs about to change (or waiting on a change further up): datums reading them must wait.
  const unsettled = upstream.flatMap((u) => ctx.unsettled.get(u) ?? []);
  const unsettledIndex = new UnsettledIndex(unsettled);
  const mine: Unsettled[] | undefined = ctx.read.has(spec.name) ? [] : undefined;

  const plans: DatumPlan[] = [];
  // This pipeline's markers by datum name; what is left once every datum took its own are removals.
  const markers = markersOf(snapshot, spec.name);
  const memo = ctx.keys.memo?.pipeline(spec.name, pipelineSignature(spec, transform.key));
  for (const datum of datums) {
    const remembered = memo && ctx.keys.memo!.entry(memo, datum);
    let key: string;
    if (remembered) key = remembered.key;
    else {
      ctx.keys.hashed++;
      key = datumKey(transform.key, datum, spec.identity);
    }
    const markerEntry = markers.get(datum.name);
    if (markerEntry) markers.delete(datum.name);
    const plan = (action: DatumPlan['action'], reason: string, source?: DatumPlan['source'], waitsOn?: DatumPlan['waitsOn']) => new PlannedDatum(spec.name, datum, key, markerEntry?.path, action, reason, source, waitsOn);
    const waitingOn = unsettledIndex.readBy(datum);
    if (waitingOn) {
      const blocked = blockedBehind(waitingOn.cause, index.failures);
      const p = plan(blocked.action, blocked.reason, undefined, blocked.waitsOn);
      plans.push(p);
      mine?.push({ dir: p.outputDir, cause: waitingOn.cause });
      continue;
    }
    // The marker blob of this key: remembered when the memo's plan found the datum current (same key,
    // same blob), else hashed.
    if (markerEntry && markerEntry.oid === (remembered?.marker ?? markerOid(spec.name, datum.name, key))) {
      plans.push(plan('skip', 'outputs are current'));
      continue;
    }
    const result = index.byKey.get(key);
    const unavailable = index.unavailable.get(key);
    if (result && !unavailable) {
      const from = result.pipeline === spec.name && result.datum === datum.name ? 'its own earlier result' : `${datumLabel(result.pipeline, result.datum)}`;
      const p = plan('link', `same key as ${from} (${result.runCommit.slice(0, 10)})`, result);
      plans.push(p);
      mine?.push({ dir: p.outputDir, cause: p });
      continue;
    }
    const pending = ctx.pendingByKey.get(key);
    if (pending) {
      const p = plan('link', `same key as ${datumLabel(pending.pipeline, pending.name)}, computed in this run`, { pending });
      plans.push(p);
      mine?.push({ dir: p.outputDir, cause: pending });
      continue;
    }
    const reason = unavailable ? `a result for this key exists (${datumLabel(result!.pipeline, result!.datum)}), but ${unavailable}` : computeReason(markerEntry, index.failures.get(key), ctx.previous, spec.name, datum, transform.key);
    const p = plan('compute', reason);
    ctx.pendingByKey.set(key, p);
    plans.push(p);
    mine?.push({ dir: p.outputDir, cause: p });
  }
  for (const [datumName, m] of markers) {
    const prev = ctx.previous.byMarker(m.oid);
    const plan: DatumPlan = {
      pipeline: spec.name,
      name: datumName,
      key: prev?.key ?? '',
      action: 'remove',
      reason: 'the input no longer produces this datum',
      outputDir: outputDir(spec.name, datumName),
      marker: m.path,
    };
    plans.push(plan);
    mine?.push({ dir: plan.outputDir, cause: plan });
  }
  const awaited = awaitedDatums(spec, datums, plans, unsettled, index.failures);
  for (const u of awaited.unforeseen) notes.push(`more datums may appear once upstream ${u} is settled; what reads ${spec.name} waits until then`);
  if (mine) ctx.unsettled.set(spec.name, [...mine, ...awaited.unsettled]);
  return { name: spec.name, file: spec.file, status: 'ready', notes, upstream, spec, transform, datums: awaited.plans.length ? [...plans, ...awaited.plans] : plans, unforeseen: awaited.unforeseen };
}

/** A pipeline's markers by the datum they record. */
function markersOf(snapshot: TreeSnapshot, pipeline: string): Map<string, TreeEntry> {
  return markersByDatum(pipeline, entriesUnder(snapshot, `${pipeline}/${BOOKKEEPING_DIR}`));
}

function describe(d: Datum): string {
  return `"${d.name}" (${d.inputs.map((i) => i.path).join(', ')})`;
}

/** Output directories must be distinct, not nested, and clear of spec.yml and the bookkeeping dir. */
function checkOutputDirs(spec: PipelineSpec, datums: readonly Datum[]): void {
  // Datums usually come sorted by name (globs match in path order): sorting 10^5 of them again costs 50 ms.
  const inOrder = datums.every((d, i) => i === 0 || datums[i - 1]!.name < d.name);
  const sorted = inOrder ? datums : [...datums].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (let i = 0; i < sorted.length; i++) {
    const d = sorted[i]!;
    if (d.name === SPEC_FILE || isAtOrBelow(d.name, BOOKKEEPING_DIR)) {
      throw new SpecError(spec.file, undefined, 'input', `datum ${describe(d)} would write into ${spec.name}/${d.name}, which minipach reserves`, 'rename that input file or directory');
    }
    const next = sorted[i + 1];
    if (next && (d.name === next.name || isAtOrBelow(next.name, d.name))) {
      throw new SpecError(spec.file, undefined, 'input', `datums ${describe(d)} and ${describe(next)} would write overlapping outputs ${outputDir(spec.name, d.name)}/ and ${outputDir(spec.name, next.name)}/`, 'use globs that do not match both a directory and entries inside it');
    }
  }
}

function computeReason(
  marker: TreeEntry | undefined,
  failure: FailureRecord | undefined,
  previous: PreviousResults,
  pipeline: string,
  datum: Datum,
  transformKey: string,
): string {
  if (failure) return `retry: failed ${failure.tries} time${failure.tries === 1 ? '' : 's'} before (${failure.reason})`;
  if (!marker) return 'new datum';
  const prev = previous.byMarker(marker.oid);
  if (!prev?.inputs) return 'outputs are from an unknown or edited key';
  const changed = diffInputs(prev.inputs, inputFingerprints(datum));
  if (changed.length) return `inputs changed: ${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ` and ${changed.length - 3} more` : ''}`;
  if (prev.transformKey !== transformKey) return `transform changed (cmd, stdin, env, image or code of ${pipeline})`;
  return 'identity settings changed';
}

function diffInputs(before: readonly InputFingerprint[], after: readonly InputFingerprint[]): string[] {
  const flat = (fs: readonly InputFingerprint[]) => {
    const m = new Map<string, string>();
    for (const f of fs) for (const [rel, key] of f.files) m.set(rel ? `${f.path}/${rel}` : f.path, key);
    return m;
  };
  const a = flat(before);
  const b = flat(after);
  const out: string[] = [];
  for (const [p, k] of b) if (a.get(p) !== k) out.push(a.has(p) ? p : `${p} (new)`);
  for (const p of a.keys()) if (!b.has(p)) out.push(`${p} (gone)`);
  return out;
}

/** Finds the record behind a marker blob, to explain what changed since. Built on first use. */
class PreviousResults {
  private map?: Map<string, ResultRecord>;
  constructor(private readonly index: ResultIndex) {}
  byMarker(oid: string): ResultRecord | undefined {
    if (!this.map) {
      this.map = new Map();
      for (const r of this.index.all) this.map.set(markerOid(r.pipeline, r.datum, r.key), r);
    }
    return this.map.get(oid);
  }
}

/**
 * What a pipeline's directory holds as outputs: the subtrees of the datums its markers record, never
 * spec.yml or the bookkeeping dir.
 */
class PipelineOutputs {
  private readonly dirs = new Map<string, Set<string>>();
  constructor(private readonly snapshot: TreeSnapshot) {}

  isOutput(pipeline: string, path: string): boolean {
    if (path === `${pipeline}/${SPEC_FILE}` || isAtOrBelow(path, `${pipeline}/${BOOKKEEPING_DIR}`)) return false;
    const dirs = this.datumDirs(pipeline);
    if (dirs.has(pipeline)) return true;
    for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
      if (dirs.has(path.slice(0, i))) return true;
    }
    return false;
  }

  private datumDirs(pipeline: string): Set<string> {
    let dirs = this.dirs.get(pipeline);
    if (!dirs) {
      dirs = new Set();
      for (const m of entriesUnder(this.snapshot, `${pipeline}/${BOOKKEEPING_DIR}`)) {
        const d = datumNameOfMarker(pipeline, m.path);
        if (d !== undefined) dirs.add(outputDir(pipeline, d));
      }
      this.dirs.set(pipeline, dirs);
    }
    return dirs;
  }
}

/** Pipelines a spec reads: those whose directory is, or contains, one of its input repos. */
function upstreamPipelines(spec: PipelineSpec | SpecError, pipelines: readonly string[]): string[] {
  if (spec instanceof SpecError) return [];
  const repos = pfsInputs(spec.input).map((i) => i.repo);
  return pipelines.filter((p) => repos.some((r) => isAtOrBelow(r, p)));
}

function topologicalOrder(names: readonly string[], upstreamOf: ReadonlyMap<string, readonly string[]>): { sorted: string[]; cyclic: string[] } {
  const sorted: string[] = [];
  const done = new Set<string>();
  let progress = true;
  while (progress) {
    progress = false;
    for (const n of names) {
      if (done.has(n)) continue;
      if (upstreamOf.get(n)!.every((u) => done.has(u))) {
        sorted.push(n);
        done.add(n);
        progress = true;
      }
    }
  }
  return { sorted, cyclic: names.filter((n) => !done.has(n)) };
}
