/**
 * The commit messages minipach writes, and parsing them back: the durable form of the result index.
 *
 * A computed datum's commit is a valid `datalad run` record (datalad's rerun matches
 * `^[DATALAD RUNCMD] ...=== Do not change lines below ===\n{json}\n^^^ Do not change lines above ^^^`) whose
 * JSON carries an extra `minipach` object; datalad ignores keys it does not know.
 * Links and removals are batched into one commit with a `[minipach]` title and a JSON block.
 */
import type { InputFingerprint, TransformIdentity } from './identity.js';
import type { ResourceUsage, ResultRecord, TransformFields } from './result-index.js';
import { datumLabel } from './datum-label.js';

export const RUN_TITLE_PREFIX = '[DATALAD RUNCMD] minipach ';
export const BATCH_TITLE_PREFIX = '[minipach] ';
const RUN_BEGIN = '=== Do not change lines below ===\n';
const RUN_END = '\n^^^ Do not change lines above ^^^';
const BATCH_BEGIN = '=== minipach record ===\n';
const BATCH_END = '\n=== end minipach record ===';

export interface DataladRunRecord {
  cmd: string;
  chain: unknown[];
  dsid?: string;
  exit: number;
  inputs: string[];
  extra_inputs: string[];
  outputs: string[];
  pwd: string;
  [k: string]: unknown;
}

/** minipach's own fields in a run record. */
export interface MinipachRunFields {
  readonly version: 1;
  readonly pipeline: string;
  readonly datum: string;
  readonly key: string;
  readonly transform_key: string;
  /** What transform_key is a hash of (records written before this field existed lack it). */
  readonly transform?: TransformFields;
  readonly inputs: readonly InputFingerprint[];
  readonly resources?: ResourceUsage;
  readonly join_key?: string;
  readonly group_key?: string;
}

export function transformFields(t: TransformIdentity): TransformFields {
  return { cmd: t.cmd, stdin: t.stdin, env: t.env, image: t.image, code: t.code.map((c) => [c.path, c.key] as const) };
}

export function parseDataladRecord(message: string): DataladRunRecord | undefined {
  const m = /^\[DATALAD RUNCMD\] [\s\S]*?=== Do not change lines below ===\n([\s\S]*)\n\^\^\^ Do not change lines above \^\^\^/.exec(message);
  if (!m) return undefined;
  try {
    return JSON.parse(m[1]!) as DataladRunRecord;
  } catch {
    return undefined;
  }
}

/** datalad's own format: `json.dumps(run_info, indent=1, sort_keys=True)`. */
function dumpSorted(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sort) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(sort(value), null, 1);
}

export function formatRunMessage(record: DataladRunRecord, fields: MinipachRunFields): string {
  return formatDataladRunMessage(datumLabel(fields.pipeline, fields.datum), { ...record, minipach: fields });
}

/** A commit message as `datalad run` writes it: `[DATALAD RUNCMD] <title>` and the sorted JSON record. */
export function formatDataladRunMessage(title: string, record: DataladRunRecord): string {
  return `${RUN_TITLE_PREFIX}${title}\n\n${RUN_BEGIN}${dumpSorted(record)}${RUN_END}\n`;
}

export interface LinkEntry {
  readonly pipeline: string;
  readonly datum: string;
  readonly key: string;
  readonly source: { readonly pipeline: string; readonly datum: string };
  readonly run_commit: string;
  readonly transform_key?: string;
  readonly inputs?: readonly InputFingerprint[];
}

export interface RemoveEntry {
  readonly pipeline: string;
  readonly datum: string;
  readonly key: string;
}

export function formatBatchMessage(links: readonly LinkEntry[], removals: readonly RemoveEntry[]): string {
  const parts = [links.length ? `link ${links.length}` : '', removals.length ? `remove ${removals.length}` : ''].filter(Boolean);
  const lines = [
    ...links.map((l) => `  link   ${datumLabel(l.pipeline, l.datum)} <- ${datumLabel(l.source.pipeline, l.source.datum)} (${l.run_commit.slice(0, 10)})`),
    ...removals.map((r) => `  remove ${datumLabel(r.pipeline, r.datum)}`),
  ];
  return `${BATCH_TITLE_PREFIX}${parts.join(', ')} datum${links.length + removals.length === 1 ? '' : 's'}\n\n${lines.join('\n')}\n\n${BATCH_BEGIN}${JSON.stringify({ version: 1, links, removals }, null, 1)}${BATCH_END}\n`;
}

/** The result records one commit message holds (none for commits minipach did not write). */
export function parseRecords(commit: string, message: string): ResultRecord[] {
  if (message.startsWith(RUN_TITLE_PREFIX)) {
    const rec = parseDataladRecord(message);
    const f = rec?.['minipach'] as MinipachRunFields | undefined;
    if (!f || f.version !== 1) return [];
    return [
      { key: f.key, pipeline: f.pipeline, datum: f.datum, kind: 'computed', commit, runCommit: commit, transformKey: f.transform_key, transform: f.transform, inputs: f.inputs, resources: f.resources },
    ];
  }
  if (message.startsWith(BATCH_TITLE_PREFIX)) {
    const i = message.indexOf(BATCH_BEGIN);
    const j = message.indexOf(BATCH_END, i);
    if (i < 0 || j < 0) return [];
    let body: { version?: number; links?: LinkEntry[] };
    try {
      body = JSON.parse(message.slice(i + BATCH_BEGIN.length, j)) as typeof body;
    } catch {
      return [];
    }
    return (body.links ?? []).map((l) => ({
      key: l.key,
      pipeline: l.pipeline,
      datum: l.datum,
      kind: 'linked' as const,
      commit,
      runCommit: l.run_commit,
      source: l.source,
      transformKey: l.transform_key,
      inputs: l.inputs,
    }));
  }
  return [];
}
