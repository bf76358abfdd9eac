/**
 * spec.yml -> PipelineSpec. Pure: takes the file's path and text (read from git by the caller), validates it
 * against SPEC_SCHEMA, then checks what a schema cannot (globs, capture references, paths), and reports the
 * first problem as a SpecError with file, line, field and hint.
 */
import { lazyValidator, yaml, type ErrorObject } from './lazy-parsers.js';
import type { Document, LineCounter, Node as YamlNode } from 'yaml';
import { SpecError } from './errors.js';
import { compileGlob, expandCaptureTemplate, GlobSyntaxError, type CompiledGlob } from './glob.js';
import { SPEC_SCHEMA } from './spec-schema.js';
import { normalizeDatasetPath } from './tree.js';

export interface PfsInput {
  readonly kind: 'pfs';
  /** Dataset-relative directory, normalised (no leading `./`, no trailing `/`). */
  readonly repo: string;
  readonly glob: CompiledGlob;
  /** Input name: `$MINIPACH_IN_<name>`; defaults to the repo's last path component. */
  readonly name: string;
  readonly joinOn?: string;
  readonly outerJoin: boolean;
  readonly groupBy?: string;
}

export interface CombinedInput {
  readonly kind: 'cross' | 'union' | 'join' | 'group';
  readonly inputs: readonly InputSpec[];
}

export type InputSpec = PfsInput | CombinedInput;

export interface TransformSpec {
  readonly cmd: readonly string[];
  readonly stdin: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Dataset-relative paths whose content keys are part of the transform's identity. */
  readonly code: readonly string[];
  readonly image: string | null;
}

export interface PipelineSpec {
  /** The directory holding spec.yml. */
  readonly name: string;
  /** `<name>/spec.yml`. */
  readonly file: string;
  readonly description?: string;
  readonly input: InputSpec;
  readonly transform: TransformSpec;
  readonly datumTries: number;
  /** Seconds; undefined means no limit. */
  readonly datumTimeout?: number;
  readonly identity: 'content' | 'path';
  /** What one datum needs and may use (Pachyderm's resource_requests / resource_limits); where it runs on Slurm. */
  readonly resources: PipelineResources;
  /** Notes for the plan (e.g. accepted-but-ignored Pachyderm fields). */
  readonly notes: readonly string[];
  /** The spec.yml text it was loaded from: a queued job carries it, and a worker loads it again. */
  readonly source: string;
}

export interface ResourceAmounts {
  readonly cpu?: number;
  /** Bytes. */
  readonly memory?: number;
  readonly gpu?: { readonly type?: string; readonly number: number };
  /** Bytes. */
  readonly disk?: number;
}

export interface PipelineResources {
  readonly requests: ResourceAmounts;
  readonly limits: ResourceAmounts;
  readonly slurm: { readonly partition?: string; readonly time?: string; readonly options: readonly string[] };
}

export const SPEC_FILE = 'spec.yml';
export const DEFAULT_DATUM_TRIES = 3;

const specSchema = lazyValidator('spec', SPEC_SCHEMA);

/** Loads the yaml parser and the spec validator now, rather than when the first spec is read (a plan does this while git lists the tree). */
export function loadSpecParsers(): void {
  yaml();
  specSchema();
}

type Path = (string | number)[];

/** Looks up the line of a node (or of the key naming it) in the YAML document. */
class Locator {
  constructor(private readonly doc: Document, private readonly lines: LineCounter) {}
  line(path: Path, preferKey?: string): number | undefined {
    const node = (path.length ? this.doc.getIn(path, true) : this.doc.contents) as YamlNode | undefined;
    if (preferKey !== undefined && yaml().isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === preferKey);
      const r = (pair?.key as YamlNode | undefined)?.range;
      if (r) return this.lines.linePos(r[0]).line;
    }
    // For a scalar, the line of its key reads better than that of its value.
    let r = node?.range;
    if (path.length) {
      const parent = this.doc.getIn(path.slice(0, -1), true);
      if (yaml().isMap(parent)) {
        const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === path[path.length - 1]);
        r = (pair?.key as YamlNode | undefined)?.range ?? r;
      } else if (yaml().isSeq(parent) && !r) r = parent.range;
    }
    return r ? this.lines.linePos(r[0]).line : undefined;
  }
}

const fieldName = (path: Path) =>
  path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '');

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

/** Parses and validates one spec. Returns the spec, or the SpecError that disables this pipeline. */
export function loadSpec(file: string, text: string): PipelineSpec | SpecError {
  try {
    return parseSpec(file, text);
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
}

function parseSpec(file: string, text: string): PipelineSpec {
  const name = file.split('/')[0]!;
  const lines = new (yaml().LineCounter)();
  const doc = yaml().parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const err = doc.errors[0]!;
    const at = lines.linePos(err.pos[0]);
    const source = text.split('\n')[at.line - 1] ?? '';
    const pointer = source.trim() ? `; the line reads: ${source.trim()}` : '';
    throw new SpecError(file, at.line, undefined, `invalid YAML: ${err.message.split('\n')[0]}${pointer}`, 'check indentation and quoting', at.col);
  }
  const raw: unknown = doc.toJS();
  const loc = new Locator(doc, lines);
  if (raw === null || raw === undefined) throw new SpecError(file, 1, undefined, 'is empty', 'a spec needs at least input and transform');
  const validate = specSchema();
  if (!validate(raw)) throw schemaError(file, loc, validate.errors![0]!);

  const obj = raw as Record<string, unknown>;
  const get = (o: Record<string, unknown>, path: Path, key: string): [unknown, Path] => {
    const c = key.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
    if (c !== key && key in o && c in o) {
      throw new SpecError(file, loc.line([...path, c]), fieldName([...path, c]), `given both as "${key}" and "${c}"`, 'keep one spelling');
    }
    const k = key in o ? key : c;
    return [o[k], [...path, k]];
  };
  const fail = (path: Path, problem: string, hint?: string): never => {
    throw new SpecError(file, loc.line(path), fieldName(path), problem, hint);
  };

  const notes: string[] = [];
  const pipelineBlock = obj['pipeline'] as { name?: string } | undefined;
  if (pipelineBlock?.name && pipelineBlock.name !== name) {
    notes.push(`pipeline.name "${pipelineBlock.name}" is ignored: the directory name "${name}" names the pipeline`);
  }

  const input = parseInput(obj['input'] as Record<string, unknown>, ['input'], get, fail, notes);
  const t = obj['transform'] as Record<string, unknown>;
  const code = ((t['code'] as string[] | undefined) ?? []).map((p, i) => {
    const n = normalizeDatasetPath(p);
    if (n === undefined || n === '') fail(['transform', 'code', i], `"${p}" escapes the dataset or names its root`, 'give a path relative to the dataset root, without ".."');
    return n!;
  });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries((t['env'] as Record<string, unknown> | undefined) ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail(['transform', 'env', k], `"${k}" is not a valid environment variable name`, 'use letters, digits and _');
    env[k] = String(v);
  }
  const [tries] = get(obj, [], 'datum_tries');
  const [timeout, timeoutPath] = get(obj, [], 'datum_timeout');
  return {
    name,
    file,
    description: obj['description'] as string | undefined,
    input,
    transform: {
      cmd: t['cmd'] as string[],
      stdin: (t['stdin'] as string[] | undefined) ?? [],
      env,
      code,
      image: (t['image'] as string | null | undefined) ?? null,
    },
    datumTries: (tries as number | undefined) ?? DEFAULT_DATUM_TRIES,
    datumTimeout: timeout === undefined ? undefined : parseDuration(timeout as string | number, () => fail(timeoutPath, 'is not a duration', 'e.g. "90s", "30m", "2h"')),
    identity: (obj['identity'] as 'content' | 'path' | undefined) ?? 'content',
    resources: {
      requests: amounts(get(obj, [], 'resource_requests')[0]),
      limits: amounts(get(obj, [], 'resource_limits')[0]),
      slurm: slurmSettings(obj['slurm'] as Record<string, unknown> | undefined, fail),
    },
    notes,
    source: text,
  };
}

type Getter = (o: Record<string, unknown>, path: Path, key: string) => [unknown, Path];
type Fail = (path: Path, problem: string, hint?: string) => never;

function parseInput(o: Record<string, unknown>, path: Path, get: Getter, fail: Fail, notes: string[]): InputSpec {
  const kind = Object.keys(o)[0] as 'pfs' | 'cross' | 'union' | 'join' | 'group';
  if (kind !== 'pfs') {
    const items = o[kind] as Record<string, unknown>[];
    const inputs = items.map((it, i) => parseInput(it, [...path, kind, i], get, fail, notes));
    if (kind === 'join' || kind === 'group') {
      // As in Pachyderm, any input may be joined or grouped: each pfs input inside is keyed by its own key.
      const key = kind === 'join' ? 'join_on' : 'group_by';
      inputs.forEach((inp, i) => {
        for (const [pfs, at] of pfsWithPaths(inp, [...path, kind, i])) {
          if ((kind === 'join' ? pfs.joinOn : pfs.groupBy) === undefined) fail([...at, 'pfs'], `needs ${key} inside a ${kind}`, `e.g. ${key}: "$1" with a capture group in the glob`);
        }
      });
    }
    if (kind !== 'union') {
      // A datum holds one input of each child, so names must differ between children; the inputs of one
      // union child may share a name (a datum holds only one of them).
      const seen = new Map<string, number>();
      inputs.forEach((inp, i) => {
        for (const n of new Set(inputNames(inp))) {
          if (seen.has(n)) fail([...path, kind, i], `input name "${n}" is used twice in a ${kind}`, 'give the inputs distinct `name`s');
          seen.set(n, i);
        }
      });
    }
    return { kind, inputs };
  }
  const p = o['pfs'] as Record<string, unknown>;
  const pp: Path = [...path, 'pfs'];
  const repo = normalizeDatasetPath(p['repo'] as string);
  if (repo === undefined) fail([...pp, 'repo'], `"${String(p['repo'])}" escapes the dataset`, 'give a directory relative to the dataset root, without ".."');
  if (repo === '') fail([...pp, 'repo'], 'names the dataset root', 'name a directory of the dataset, e.g. "raw"');
  let glob: CompiledGlob;
  try {
    glob = compileGlob(p['glob'] as string);
  } catch (e) {
    if (e instanceof GlobSyntaxError) fail([...pp, 'glob'], e.problem, e.hint);
    throw e;
  }
  const [joinOn, joinPath] = get(p, pp, 'join_on');
  const [groupBy, groupPath] = get(p, pp, 'group_by');
  const [outerJoin] = get(p, pp, 'outer_join');
  for (const [tmpl, tp] of [[joinOn, joinPath], [groupBy, groupPath]] as const) {
    if (typeof tmpl !== 'string') continue;
    try {
      expandCaptureTemplate(tmpl, glob!.groupCount);
    } catch (e) {
      if (e instanceof GlobSyntaxError) fail(tp, e.problem, e.hint);
      throw e;
    }
  }
  const name = (p['name'] as string | undefined) ?? repo!.split('/').pop()!;
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
    fail([...pp, p['name'] ? 'name' : 'repo'], `input name "${name}" cannot name an environment variable`, 'set `name` to letters, digits and _');
  }
  if (p['branch'] !== undefined) notes.push(`${fieldName([...pp, 'branch'])} is ignored: inputs come from the branch being scheduled`);
  return {
    kind: 'pfs',
    repo: repo!,
    glob: glob!,
    name,
    joinOn: joinOn as string | undefined,
    groupBy: groupBy as string | undefined,
    outerJoin: (outerJoin as boolean | undefined) ?? false,
  };
}

/** The pfs inputs below an input, each with the path of its field (for errors). */
function pfsWithPaths(input: InputSpec, path: Path): [PfsInput, Path][] {
  return input.kind === 'pfs' ? [[input, path]] : input.inputs.flatMap((c, i) => pfsWithPaths(c, [...path, input.kind, i]));
}

export function inputNames(input: InputSpec): string[] {
  return input.kind === 'pfs' ? [input.name] : input.inputs.flatMap(inputNames);
}

/** Every pfs input of a spec, depth first. */
export function pfsInputs(input: InputSpec): PfsInput[] {
  return input.kind === 'pfs' ? [input] : input.inputs.flatMap(pfsInputs);
}

/** Bytes of "512M", "2G", "1.5Gi" (SI suffixes powers of 1000, binary ones of 1024, as Kubernetes reads them). */
export function parseBytes(v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)([KMGTP])?(i)?$/.exec(v)!;
  const power = m[2] ? 'KMGTP'.indexOf(m[2]) + 1 : 0;
  return Math.round(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
}

function amounts(raw: unknown): ResourceAmounts {
  const r = (raw ?? {}) as { cpu?: number; memory?: string; gpu?: { type?: string; number: number }; disk?: string };
  return {
    ...(r.cpu !== undefined ? { cpu: r.cpu } : {}),
    ...(r.memory !== undefined ? { memory: parseBytes(r.memory) } : {}),
    ...(r.gpu ? { gpu: r.gpu } : {}),
    ...(r.disk !== undefined ? { disk: parseBytes(r.disk) } : {}),
  };
}

function slurmSettings(raw: Record<string, unknown> | undefined, fail: Fail): PipelineResources['slurm'] {
  if (!raw) return { options: [] };
  const time = raw['time'] as string | undefined;
  // Slurm's forms: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]].
  if (time !== undefined && !/^(\d+-)?\d+(:\d+){0,2}$/.test(time)) fail(['slurm', 'time'], `"${time}" is not a Slurm time limit`, 'e.g. "30" (minutes), "2:00:00", "1-0"');
  const options = (raw['options'] as string[] | undefined) ?? [];
  options.forEach((o, i) => {
    if (!o.startsWith('-')) fail(['slurm', 'options', i], `"${o}" is not an sbatch option`, 'e.g. "--account=lab"');
    // minipach decides these itself: the array, its script, where its output goes.
    if (/^--(array|wrap|output|error|parsable|job-name)\b|^-[aoeJ]/.test(o)) fail(['slurm', 'options', i], `"${o}" is set by minipach`, 'leave it out');
  });
  return { ...(raw['partition'] !== undefined ? { partition: raw['partition'] as string } : {}), ...(time !== undefined ? { time } : {}), options };
}

function parseDuration(v: string | number, onError: () => never): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(v);
  if (!m) onError();
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m![2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m![1]) * mult;
}

function schemaError(file: string, loc: Locator, err: ErrorObject): SpecError {
  const path: Path = err.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const accepted = (schema: unknown) =>
    Object.keys((schema as { properties?: object } | undefined)?.properties ?? {})
      .filter((k) => snake(k) === k)
      .join(', ');
  switch (err.keyword) {
    case 'additionalProperties': {
      const extra = (err.params as { additionalProperty: string }).additionalProperty;
      return new SpecError(file, loc.line(path, extra), fieldName([...path, extra]), `unknown field "${extra}"`, `accepted here: ${accepted(err.parentSchema)}`);
    }
    case 'required': {
      const missing = (err.params as { missingProperty: string }).missingProperty;
      return new SpecError(file, loc.line(path), fieldName([...path, missing]), 'is required', missing === 'cmd' ? 'e.g. cmd: [sh, -c]' : undefined);
    }
    case 'minProperties':
    case 'maxProperties':
      return new SpecError(file, loc.line(path), fieldName(path), 'must hold exactly one of pfs, cross, union, join, group', 'e.g. input: { pfs: { repo: raw, glob: "/*" } }');
    case 'type':
      return new SpecError(file, loc.line(path), fieldName(path), `must be ${(err.params as { type: string | string[] }).type.toString().replace(',', ' or ')}`, path.at(-1) === 'cmd' ? 'write cmd as a list, e.g. [sh, -c]' : undefined);
    case 'enum':
      return new SpecError(file, loc.line(path), fieldName(path), `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`);
    case 'pattern':
      return path.at(-1) === 'memory' || path.at(-1) === 'disk'
        ? new SpecError(file, loc.line(path), fieldName(path), 'is not an amount of bytes', 'e.g. "512M", "2G", "1.5Gi"')
        : new SpecError(file, loc.line(path), fieldName(path), 'is not a duration', 'e.g. "90s", "30m", "2h"');
    default:
      return new SpecError(file, loc.line(path), fieldName(path), err.message ?? 'is invalid');
  }
}
