/**
 * Inputs -> datums. One function per input kind, chosen by one switch (as Pachyderm's datum.Create does);
 * combinators wrap the datums of their children. Pure: the files of each repo come from a RepoView.
 *
 * Datum names (where outputs go, `<pipeline>/<name>/`):
 * - pfs: the matched path below the repo (`sub-01`, `a/b.txt`); `/` gives `` (outputs in `<pipeline>/`).
 * - cross: the children's non-empty names joined with `+` (`img1.png+model`).
 * - union: each child's own name; where children produce the same name (two repos with the same subjects,
 *   or a repo with itself), those datums are all named `<name>+<child>`: the child's input names joined with
 *   `+` (`sub-01+t1`), followed by `.<child number from 1>` when those are equal too (`sub-01+raw.2`).
 * - join: the join key (`sub-01`); when a key pairs several files of one input, `<key>+<names>`.
 * - group: the group key.
 *
 * Join and group work on the inputs of their children's datums, as Pachyderm's key and merge tasks do:
 * each input is keyed by its own join_on / group_by, whatever combinator produced it.
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
  /** The pfs input's outer_join (what a join keeps of a key some inputs lack). */
  readonly outerJoin?: boolean;
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
      return unionDatums(input.inputs.map((i) => createDatums(i, view)), input.inputs);
    case 'join':
      return joinDatums(input.inputs.map((i) => createDatums(i, view)));
    case 'group':
      return groupDatums(input.inputs.map((i) => createDatums(i, view)));
    default: {
      const never: never = input;
      throw new Error(`unknown input kind ${JSON.stringify(never)}`);
    }
  }
}

function pfsDatums(input: PfsInput, view: RepoView): Datum[] {
  const from = input.repo.length + 1;
  return matchGlob(input.glob, view(input.repo), (entry) => entry.path.slice(from)).map(({ match, files: matched }) => {
    const cut = from + (match.path === '' ? 0 : match.path.length + 1);
    const di: DatumInput = {
      name: input.name,
      repo: input.repo,
      path: match.path === '' ? input.repo : `${input.repo}/${match.path}`,
      matched: match.path,
      files: matched.map((entry) => ({ rel: entry.path.slice(cut), entry })),
      joinOn: input.joinOn === undefined ? undefined : expandCaptureTemplate(input.joinOn, input.glob.groupCount, match.captures),
      groupBy: input.groupBy === undefined ? undefined : expandCaptureTemplate(input.groupBy, input.glob.groupCount, match.captures),
      outerJoin: input.outerJoin || undefined,
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

/**
 * The sum of the children's datums, as Pachyderm's union is. A name two children both produce is made
 * unique by the child it comes from (see the file comment); names no other child produces stay as they are.
 */
function unionDatums(children: Datum[][], specs: readonly InputSpec[]): Datum[] {
  const producers = new Map<string, Set<number>>();
  children.forEach((c, i) => c.forEach((d) => producers.set(d.name, (producers.get(d.name) ?? new Set()).add(i))));
  const labels = specs.map((spec) => pfsNames(spec).join('+'));
  const label = (i: number) => (labels.filter((l) => l === labels[i]).length > 1 ? `${labels[i]}.${i + 1}` : labels[i]!);
  const out = children.flatMap((c, i) => c.map((d) => (producers.get(d.name)!.size > 1 ? { ...d, name: joinNames([d.name, label(i)]) } : d)));
  const seen = new Map<string, Datum>();
  for (const d of out) {
    const prev = seen.get(d.name);
    // Only one child producing a name twice is left (a cross of two `/` globs, say): still an error.
    if (prev) throw new DatumCollision(d.name, prev, d);
    seen.set(d.name, d);
  }
  return out;
}

function pfsNames(spec: InputSpec): string[] {
  return spec.kind === 'pfs' ? [spec.name] : spec.inputs.flatMap(pfsNames);
}

/**
 * Pachyderm's join: every input of every child's datums is keyed by its join_on; per key, the cross product
 * of each child's inputs. Where some child lacks the key, only the inputs marked outer_join are kept
 * (Pachyderm's merge task); a key without any is dropped.
 */
function joinDatums(children: Datum[][]): Datum[] {
  const perChild = children.map((c) => groupByKey(c.flatMap((d) => d.inputs), (i) => i.joinOn ?? ''));
  const keys = new Set(perChild.flatMap((m) => [...m.keys()]));
  const out: Datum[] = [];
  for (const key of [...keys].sort()) {
    const present = perChild.map((m) => m.get(key) ?? []);
    const complete = present.every((p) => p.length > 0);
    const lists = complete ? present : present.map((p) => p.filter((i) => i.outerJoin)).filter((p) => p.length > 0);
    if (!lists.length) continue;
    const combos = crossInputs(lists);
    for (const c of combos) {
      out.push({ name: combos.length === 1 ? key : `${key}+${joinNames(c.map((i) => i.matched)).replace(/\//g, '_')}`, inputs: c, joinKey: key });
    }
  }
  return out;
}

function crossInputs(lists: readonly (readonly DatumInput[])[]): DatumInput[][] {
  let acc: DatumInput[][] = [[]];
  for (const list of lists) acc = acc.flatMap((a) => list.map((i) => [...a, i]));
  return acc;
}

/**
 * Pachyderm's group: every input of every child's datums is keyed by its own group_by, and all inputs with
 * one key are one datum (an input that several child datums share counts once).
 */
function groupDatums(children: Datum[][]): Datum[] {
  const all = groupByKey(children.flat().flatMap((d) => d.inputs), (i) => i.groupBy ?? '');
  return [...all.keys()].sort().map((key) => {
    const unique = [...new Map(all.get(key)!.map((i) => [`${i.name}\0${i.path}`, i])).values()];
    return { name: key, inputs: unique, groupKey: key };
  });
}

function groupByKey<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const d of items) {
    const k = key(d);
    const list = m.get(k);
    if (list) list.push(d);
    else m.set(k, [d]);
  }
  return m;
}
