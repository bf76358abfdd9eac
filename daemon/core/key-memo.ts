/**
 * Datum keys of an earlier plan, reused for datums whose inputs did not change since: a re-plan hashes
 * only what changed. A key is reused only when all of these hold, else it is hashed again:
 * - the pipeline's transform key, identity setting and input spec are the same (its signature);
 * - the datum has the same name and reads the same input paths under the same input names;
 * - no file at or below any of those paths changed between the two commits, and no marker of an upstream
 *   datum whose outputs lie there (markers decide which outputs are seen);
 * - the key version is the same.
 * Together they mean the datum's key would hash the same file list and content keys, so it is the same.
 */
import { canonicalJson, KEY_VERSION, type Hashable } from './hash.js';
import { datumNameOfMarker, outputDir } from './identity.js';
import type { Datum } from './datums.js';
import type { PipelineSpec } from './spec.js';

export interface MemoDatum {
  readonly key: string;
  /** Its marker's blob id, when the plan found it current. */
  readonly marker?: string;
}

/**
 * One pipeline's datums in a memo, as parallel columns in plan order (a memo holds 10^5 datums: no object
 * per datum). A re-plan asks for its datums in the same order, so a lookup is usually the next row.
 */
export class MemoPipeline {
  private next = 0;
  private rowOf?: Map<string, number>;

  constructor(
    /** pipelineSignature at the time. */
    readonly signature: string,
    /** Datum names, and for each the input paths it read (inputsSignature), its key, and its marker's blob id when it was current ('' if not). */
    readonly names: readonly string[],
    readonly inputs: readonly string[],
    readonly keys: readonly string[],
    readonly markers: readonly string[],
  ) {}

  /** The row of a datum, or -1. */
  row(name: string): number {
    let i = this.next;
    if (this.names[i] !== name) {
      this.rowOf ??= new Map(this.names.map((n, r) => [n, r]));
      i = this.rowOf.get(name) ?? -1;
    }
    if (i >= 0) this.next = i + 1;
    return i;
  }
}

export interface KeyMemo {
  /** The commit whose plan left it. */
  readonly commit: string;
  /** Paths of files that differ between the memo's commit and the commit planned (none: the same commit). */
  readonly changed: readonly string[];
  readonly pipelines: ReadonlyMap<string, MemoPipeline>;
}

/** What a pipeline's datum keys depend on besides the datums' own inputs. */
export function pipelineSignature(spec: PipelineSpec, transformKey: string): string {
  return JSON.stringify([KEY_VERSION, transformKey, spec.identity, canonicalJson(spec.input as unknown as Hashable)]);
}

/** The input names and paths a datum reads. */
export function inputsSignature(datum: Datum): string {
  const inputs = datum.inputs;
  // Most datums read one input: no array per datum for them (a memo holds 10^5).
  if (inputs.length === 1) return inputs[0]!.name + '\0' + inputs[0]!.path;
  return inputs.map((i) => `${i.name}\0${i.path}`).join('\0');
}

/** Whether `signature` is inputsSignature(datum), without building it (a re-plan asks for every datum). */
function sameInputs(signature: string, datum: Datum): boolean {
  let at = 0;
  for (let n = 0; n < datum.inputs.length; n++) {
    const { name, path } = datum.inputs[n]!;
    if (n > 0) {
      if (signature.charCodeAt(at) !== 0) return false;
      at++;
    }
    if (!signature.startsWith(name, at) || signature.charCodeAt(at + name.length) !== 0 || !signature.startsWith(path, at + name.length + 1)) return false;
    at += name.length + 1 + path.length;
  }
  return at === signature.length;
}

/** Looks keys up in a memo for one plan. */
export class KeyMemoLookup {
  /** Every changed path and every directory above one ('' included): an input at one of them changed. */
  private readonly touched = new Set<string>();

  constructor(private readonly memo: KeyMemo) {
    const touch = (p: string) => {
      this.touched.add(p);
      for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) this.touched.add(p.slice(0, i));
    };
    for (const p of memo.changed) {
      touch(p);
      // A pipeline's outputs are seen downstream only where its markers say so: a marker that came or went
      // changes what a datum reading that output directory sees, even when no file under it changed.
      const pipeline = p.slice(0, p.indexOf('/'));
      const datum = pipeline ? datumNameOfMarker(pipeline, p) : undefined;
      if (datum !== undefined) touch(outputDir(pipeline, datum));
    }
    if (memo.changed.length) this.touched.add('');
  }

  /** The memo of a pipeline, when its signature still holds. */
  pipeline(name: string, signature: string): MemoPipeline | undefined {
    const m = this.memo.pipelines.get(name);
    return m?.signature === signature ? m : undefined;
  }

  /** The key remembered for `datum` (with its marker blob id, if known), when it still holds. */
  entry(memo: MemoPipeline | undefined, datum: Datum): MemoDatum | undefined {
    const r = memo ? memo.row(datum.name) : -1;
    if (r < 0 || (this.touched.size && datum.inputs.some((i) => this.touched.has(i.path)))) return undefined;
    if (!sameInputs(memo!.inputs[r]!, datum)) return undefined;
    const marker = memo!.markers[r];
    return marker ? { key: memo!.keys[r]!, marker } : { key: memo!.keys[r]! };
  }
}

/**
 * The memo a plan leaves for the next one: each ready pipeline's datum keys, and for the datums it found
 * current, their marker's blob id (from `markerOids`, the snapshot's; equal to the key's by that finding).
 */
export function memoOfPlan(
  pipelines: readonly { readonly spec?: PipelineSpec; readonly transform?: { readonly key: string }; readonly datums: readonly { readonly name: string; readonly key: string; readonly action: string; readonly marker: string; readonly datum?: Datum }[] }[],
  markerOids?: { get(path: string): { readonly oid: string } | undefined },
): Map<string, MemoPipeline> {
  const out = new Map<string, MemoPipeline>();
  for (const p of pipelines) {
    if (!p.spec || !p.transform) continue;
    const names: string[] = [];
    const inputs: string[] = [];
    const keys: string[] = [];
    const markers: string[] = [];
    for (const d of p.datums) {
      if (!d.datum || !d.key) continue;
      names.push(d.name);
      inputs.push(inputsSignature(d.datum));
      keys.push(d.key);
      markers.push((d.action === 'skip' && markerOids?.get(d.marker)?.oid) || '');
    }
    out.set(p.spec.name, new MemoPipeline(pipelineSignature(p.spec, p.transform.key), names, inputs, keys, markers));
  }
  return out;
}
