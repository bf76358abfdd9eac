/**
 * Datum identity. The datum *name* says which files a datum is (where its outputs go); the datum *key* says
 * what they contain and what is done to them, so equal keys can share one result.
 *
 * key = hash(['Datum', transformKey, inputs]) where inputs lists, per input, its name and every file's
 * content key with its path relative to the matched path. Matched names join the key only with
 * `identity: path`. Left out on purpose, because they cannot change outputs: datum_tries, datum_timeout,
 * description, the glob itself (its effect is already in the relative paths), the pipeline's name.
 */
import { resolveContainer, type ContainerDef } from './container.js';
import { hashCanonical, hashStruct, gitBlobOid } from './hash.js';
import { jsonString } from './json-text.js';
import type { Datum, DatumInput } from './datums.js';
import { SPEC_FILE, type PipelineSpec } from './spec.js';
import { entriesUnder, isAtOrBelow, type TreeSnapshot } from './tree.js';

export interface CodeFile {
  readonly path: string;
  readonly key: string;
}

/** A transform as it was run: what its key is a hash of, recorded with every result for `explain`. */
export interface TransformIdentity {
  readonly key: string;
  readonly cmd: readonly string[];
  readonly stdin: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly image: string | null;
  /** The container `image` names, and its image file's content key (what the transform key holds). */
  readonly container?: ContainerDef & { readonly key: string };
  readonly code: readonly CodeFile[];
}

/** Thrown when a `code` path names nothing in the tree; the planner turns it into a SpecError. */
export class MissingCodePath extends Error {
  constructor(readonly index: number, readonly path: string) {
    super(`code path "${path}" does not exist in this commit`);
  }
}

export function transformIdentity(spec: PipelineSpec, snapshot: TreeSnapshot, containers: ReadonlyMap<string, ContainerDef> = new Map()): TransformIdentity {
  const code: CodeFile[] = [];
  spec.transform.code.forEach((p, i) => {
    const files = entriesUnder(snapshot, p);
    if (!files.length) throw new MissingCodePath(i, p);
    for (const f of files) code.push({ path: f.path, key: f.contentKey });
  });
  const t = spec.transform;
  // The image by its content, not its name: a new image recomputes its pipelines, a renamed one nothing.
  // Throws ImageError (the planner makes it the pipeline's SpecError).
  const def = t.image === null ? undefined : resolveContainer(t.image, containers, (p) => snapshot.byPath.has(p));
  const container = def && { ...def, key: snapshot.byPath.get(def.image)!.contentKey };
  const key = hashStruct([
    'Transform',
    { cmd: [...t.cmd], stdin: [...t.stdin], env: { ...t.env }, image: container ? container.key : null, code: code.map((c) => [c.path, c.key]) },
  ]);
  return { key, cmd: t.cmd, stdin: t.stdin, env: t.env, image: t.image, ...(container ? { container } : {}), code };
}

/** Per input: name and (relative path, content key) of every file. This is what a result records as its inputs. */
export type InputFingerprint = { readonly name: string; readonly path: string; readonly files: readonly (readonly [string, string])[] };

export function inputFingerprints(datum: Datum): InputFingerprint[] {
  return datum.inputs.map((i) => ({ name: i.name, path: i.path, files: i.files.map((f) => [f.rel, f.entry.contentKey] as const) }));
}

export function datumKey(transformKey: string, datum: Datum, identity: 'content' | 'path'): string {
  // The canonical JSON of ['Datum', transformKey, inputs, name], inputs sorted by their own JSON, written
  // by concatenation: the same bytes JSON.stringify gives the nested arrays (golden and equivalence tests
  // hold the keys to that), without building the arrays for each of 10^5 datums (measured here: concatenation
  // beats both those arrays and joining an array of parts).
  let inputs: string;
  if (datum.inputs.length === 1) inputs = inputJson(datum.inputs[0]!, identity);
  else {
    const each = datum.inputs.map((i) => inputJson(i, identity));
    inputs = each.sort((a, b) => (a < b ? -1 : 1)).join(',');
  }
  return hashCanonical('["Datum",' + jsonString(transformKey) + ',[' + inputs + '],' + (identity === 'path' ? jsonString(datum.name) : '""') + ']');
}

/** An input's JSON: [name, path or '', [[rel, content key], ...]]. */
function inputJson(i: DatumInput, identity: 'content' | 'path'): string {
  let s = '[' + jsonString(i.name) + ',' + (identity === 'path' ? jsonString(i.path) : '""') + ',[';
  for (let f = 0; f < i.files.length; f++) s += (f ? ',[' : '[') + jsonString(i.files[f]!.rel) + ',' + jsonString(i.files[f]!.entry.contentKey) + ']';
  return s + ']]';
}

/** Where a datum's outputs go. */
export function outputDir(pipeline: string, datumName: string): string {
  return datumName === '' ? pipeline : `${pipeline}/${datumName}`;
}

/** minipach's bookkeeping directory inside a pipeline: never an output, never seen downstream. */
export const BOOKKEEPING_DIR = '.minipach';

/**
 * The marker file recording which datum key produced the outputs now at a datum's path. Its content is a
 * function of (pipeline, datum, key) alone, so the planner can tell "current" from the blob id in the tree
 * without reading any blob.
 *
 * Markers are spread over 256 shard directories, `.minipach/shards/<xx>/<name>.datum`: each run commit
 * writes a new version of every directory on its marker's path, and git writes a tree object whole, so
 * one flat directory of 10^5 markers cost each result a 10^5-entry tree (half of integrating it). Markers
 * written before the shards, `.minipach/datums/<name>.datum`, are still read, and stay where they are.
 */
export function markerPath(pipeline: string, datumName: string): string {
  return datumName === '' ? `${pipeline}/${BOOKKEEPING_DIR}/root.datum` : `${pipeline}/${BOOKKEEPING_DIR}/${SHARDS_DIR}/${markerShard(datumName)}/${datumName}.datum`;
}

const SHARDS_DIR = 'shards';
const LEGACY_MARKERS_DIR = 'datums';

/**
 * A datum name's marker shard: two hex digits, the low byte of the 32-bit FNV-1a hash of the name's UTF-8
 * bytes with its high bits folded in (a cryptographic hash here costs 0.1 s per 10^5 names, for a layout).
 */
export function markerShard(datumName: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < datumName.length; i++) {
    const c = datumName.charCodeAt(i);
    if (c > 0x7f) {
      for (const b of new TextEncoder().encode(datumName.slice(i))) h = Math.imul(h ^ b, 0x01000193);
      break;
    }
    h = Math.imul(h ^ c, 0x01000193);
  }
  h ^= h >>> 16;
  h ^= h >>> 8;
  return HEX_BYTE[h & 0xff]!;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The datum name a marker path records (either layout), or undefined if the path is not a marker of `pipeline`. */
export function datumNameOfMarker(pipeline: string, path: string): string | undefined {
  const dir = `${pipeline}/${BOOKKEEPING_DIR}/`;
  if (!path.startsWith(dir) || !path.endsWith('.datum')) return undefined;
  const rest = path.slice(dir.length, -'.datum'.length);
  if (rest === 'root') return '';
  if (rest.startsWith(`${SHARDS_DIR}/`) && rest.length > SHARDS_DIR.length + 4 && rest[SHARDS_DIR.length + 3] === '/' && isHexByte(rest, SHARDS_DIR.length + 1)) {
    return rest.slice(SHARDS_DIR.length + 4);
  }
  if (rest.startsWith(`${LEGACY_MARKERS_DIR}/`) && rest.length > LEGACY_MARKERS_DIR.length + 1) return rest.slice(LEGACY_MARKERS_DIR.length + 1);
  return undefined;
}

/** Two lowercase hex digits at `at` (asked of every marker a re-plan reads: no slice or regex). */
function isHexByte(s: string, at: number): boolean {
  return isHexDigit(s.charCodeAt(at)) && isHexDigit(s.charCodeAt(at + 1));
}

const isHexDigit = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);

/**
 * A pipeline's markers among `entries` (files under its bookkeeping directory), by the datum they record.
 * A datum with markers in both layouts (only a merge of histories written before and after the shards can
 * make one) keeps the first in path order, the older layout's.
 */
export function markersByDatum<E extends { readonly path: string }>(pipeline: string, entries: Iterable<E>): Map<string, E> {
  const out = new Map<string, E>();
  for (const e of entries) {
    const name = datumNameOfMarker(pipeline, e.path);
    if (name !== undefined && !out.has(name)) out.set(name, e);
  }
  return out;
}

export function markerContent(pipeline: string, datumName: string, key: string): string {
  return JSON.stringify({ pipeline, datum: datumName, key }) + '\n';
}

export function markerOid(pipeline: string, datumName: string, key: string): string {
  return gitBlobOid(markerContent(pipeline, datumName, key));
}

/**
 * The entries of a datum's output directory that belong to it. For a `/` datum the output directory is the
 * pipeline's own, and spec.yml and the bookkeeping directory are never outputs.
 */
export function datumOutputs<E extends { readonly path: string }>(entries: readonly E[], pipeline: string, dir: string): E[] {
  return entries.filter(
    (e) => isAtOrBelow(e.path, dir) && (dir !== pipeline || (e.path !== `${pipeline}/${SPEC_FILE}` && !isAtOrBelow(e.path, `${pipeline}/${BOOKKEEPING_DIR}`))),
  );
}
