/**
 * Inputs -> datums. One function per input kind, chosen by one switch (as Pachyderm's datum.Create does);
 * combinators wrap the datums of their children. Pure: the files of each repo come from a RepoView.
 *
 * Datum names (where outputs go, `<pipeline>/<name>/`):
 * - pfs: the matched path below the repo (`sub-01`, `a/b.txt`); `/` gives `` (outputs in `<pipeline>/`).
 * - cross: the children's non-empty names joined with `+` (`img1.png+model`).
 * - union: each child's own name (two children producing the same name is an error naming both).
 * - join: the join key (`sub-01`); when a key pairs several files of one input, `<key>+<names>`.
 * - group: the group key.
 */
import { expandCaptureTemplate } from './glob.js';
import { matchGlob } from './glob.js';
import type { InputSpec, PfsInput } from './spec.js';
import type { TreeEntry } from './tree.js';

export interface DatumFile {
  /** Path relative to the matched path (`` when the match is the file itself). */
  readonly rel: string;
  readonly entry: TreeEntry;
}

/** What one pfs input contributes to a datum. */
export interface DatumInput {
  readonly name: string;
  readonly repo: string;
  /** Dataset-relative matched path (`raw/t1/sub-01`; the repo itself for `/`). */
  readonly path: string;
  /** Path below the repo (`sub-01`; `` for `/`). */
  readonly matched: string;
  readonly files: readonly DatumFile[];
  readonly joinOn?: string;
  readonly groupBy?: string;
}

export interface Datum {
  readonly name: string;
  readonly inputs: readonly DatumInput[];
  readonly joinKey?: string;
  readonly groupKey?: string;
}

/** The files a pipeline may read from a repo directory (already filtered to outputs for pipeline repos). */
export type RepoView = (repo: string) => readonly TreeEntry[];

/** Why a set of datums could not be formed; carries both datums for collisions. */
export class DatumCollision extends Error {
  constructor(readonly datumName: string, readonly first: Datum, readonly second: Datum) {
    super(`datum name "${datumName}" is produced twice`);
  }
}

export function createDatums(input: InputSpec, view: RepoView): Datum[] {
  switch (input.kind) {
    case 'pfs':
      return pfsDatums(input, view);
    case 'cross':
      return crossDatums(input.inputs.map((i) => createDatums(i, view)));
    case 'union':
      return unionDatums(input.inputs.map((i) => createDatums(i, view)));
    case 'join':
      return joinDatums(input.inputs as PfsInput[], view);
    case 'group':
      return groupDatums(input.inputs as PfsInput[], view);
    default: {
      const never: never = input;
      throw new Error(`unknown input kind ${JSON.stringify(never)}`);
    }
  }
}

function pfsDatums(input: PfsInput, view: RepoView): Datum[] {
  const prefix = input.repo + '/';
  const files = view(input.repo).map((entry) => ({ rel: entry.path.slice(prefix.length), entry }));
  return matchGlob(input.glob, files).map(({ match, files: matched }) => {
    const cut = match.path === '' ? 0 : match.path.length + 1;
    const di: DatumInput = {
      name: input.name,
      repo: input.repo,
      path: match.path === '' ? input.repo : `${input.repo}/${match.path}`,
      matched: match.path,
      files: matched.map((f) => ({ rel: f.rel.slice(cut), entry: f.entry })),
      joinOn: input.joinOn === undefined ? undefined : expandCaptureTemplate(input.joinOn, input.glob.groupCount, match.captures),
      groupBy: input.groupBy === undefined ? undefined : expandCaptureTemplate(input.groupBy, input.glob.groupCount, match.captures),
    };
    return { name: match.path, inputs: [di] };
  });
}

const joinNames = (names: readonly string[]) => names.filter((n) => n !== '').join('+');

function crossDatums(children: Datum[][]): Datum[] {
  let acc: Datum[] = [{ name: '', inputs: [] }];
  for (const child of children) {
    const next: Datum[] = [];
    for (const a of acc) for (const b of child) next.push({ name: joinNames([a.name, b.name]), inputs: [...a.inputs, ...b.inputs] });
    acc = next;
  }
  return children.length ? acc : [];
}

function unionDatums(children: Datum[][]): Datum[] {
  const seen = new Map<string, Datum>();
  for (const d of children.flat()) {
    const prev = seen.get(d.name);
    if (prev) throw new DatumCollision(d.name, prev, d);
    seen.set(d.name, d);
  }
  return children.flat();
}

/** Pachyderm's join: per key, the cross product of each input's matches; `outer_join` inputs keep unmatched keys. */
function joinDatums(inputs: readonly PfsInput[], view: RepoView): Datum[] {
  const perInput = inputs.map((inp) => groupByKey(pfsDatums(inp, view), (d) => d.inputs[0]!.joinOn!));
  const keys = new Set(perInput.flatMap((m) => [...m.keys()]));
  const out: Datum[] = [];
  for (const key of [...keys].sort()) {
    const present = perInput.map((m) => m.get(key) ?? []);
    const complete = present.every((p) => p.length > 0);
    const keep = complete || inputs.some((inp, i) => inp.outerJoin && present[i]!.length > 0);
    if (!keep) continue;
    const combos = crossDatums(present.filter((p) => p.length > 0));
    for (const c of combos) {
      out.push({ name: combos.length === 1 ? key : `${key}+${c.name.replace(/\//g, '_')}`, inputs: c.inputs, joinKey: key });
    }
  }
  return out;
}

/** Pachyderm's group: every match of every input with the same group_by key is one datum. */
function groupDatums(inputs: readonly PfsInput[], view: RepoView): Datum[] {
  const all = groupByKey(inputs.flatMap((inp) => pfsDatums(inp, view)), (d) => d.inputs[0]!.groupBy!);
  return [...all.keys()].sort().map((key) => ({ name: key, inputs: all.get(key)!.flatMap((d) => d.inputs), groupKey: key }));
}

function groupByKey(datums: Datum[], key: (d: Datum) => string): Map<string, Datum[]> {
  const m = new Map<string, Datum[]>();
  for (const d of datums) {
    const k = key(d);
    const list = m.get(k);
    if (list) list.push(d);
    else m.set(k, [d]);
  }
  return m;
}
