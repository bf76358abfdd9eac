/**
 * Results and the result index. A result is what a datum key produced; it is durable in git (in the commit
 * messages the committer writes, see record.ts) and the index is rebuilt from them.
 */
import type { InputFingerprint } from './identity.js';

export interface ResourceUsage {
  /** Seconds the whole job took: scratch checkout, `datalad run` and hand-in. What a forecast predicts. */
  readonly wall: number;
  /** Seconds the transform's command itself ran (absent where it could not be measured, see resources.ts). */
  readonly commandWall?: number;
  /** User + system CPU seconds of the command's whole process tree. */
  readonly cpu?: number;
  /** Peak resident set size of the command's whole process tree, KiB. */
  readonly maxRssKiB?: number;
}

/** A transform as recorded with its result: what its key is a hash of. */
export interface TransformFields {
  readonly cmd: readonly string[];
  readonly stdin: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly image: string | null;
  /** [path, content key] of every `code` file. */
  readonly code: readonly (readonly [string, string])[];
}

export interface ResultRecord {
  readonly key: string;
  readonly pipeline: string;
  readonly datum: string;
  /** computed: a run commit; linked: same keys placed again from another datum's result. */
  readonly kind: 'computed' | 'linked';
  /** The commit on the branch that put these outputs at `pipeline/datum`. */
  readonly commit: string;
  /** The run commit whose outputs these are (equal to `commit` when computed). */
  readonly runCommit: string;
  /** For linked results: the datum whose result was reused. */
  readonly source?: { readonly pipeline: string; readonly datum: string };
  readonly transformKey?: string;
  readonly transform?: TransformFields;
  readonly inputs?: readonly InputFingerprint[];
  readonly resources?: ResourceUsage;
  /** Where the output files can be read, when not at `commit:pipeline/datum` (a shared result). */
  readonly outputsAt?: { readonly commit: string; readonly dir: string };
}

export interface FailureRecord {
  readonly key: string;
  readonly pipeline: string;
  readonly datum: string;
  /** Exit code of the command; undefined when it did not run (e.g. killed by a timeout). */
  readonly exit?: number;
  readonly reason: string;
  readonly stderrTail: string;
  readonly tries: number;
  /** ISO time of the last try. */
  readonly at: string;
}

export interface ResultIndex {
  /** Datum key -> the computed result for it (the link source of choice). */
  readonly byKey: ReadonlyMap<string, ResultRecord>;
  /** Every record, computed and linked, oldest first. */
  readonly all: readonly ResultRecord[];
  /** Datum key -> its last failure, when it has no result. */
  readonly failures: ReadonlyMap<string, FailureRecord>;
  /**
   * Datum key -> why its result cannot be reused: its content is retrievable from nowhere. The plan computes
   * such a datum again instead of linking a dangling key.
   */
  readonly unavailable: ReadonlyMap<string, string>;
}

export function buildIndex(records: readonly ResultRecord[], failures: readonly FailureRecord[] = [], unavailable: ReadonlyMap<string, string> = new Map()): ResultIndex {
  const byKey = new Map<string, ResultRecord>();
  for (const r of records) {
    const prev = byKey.get(r.key);
    if (!prev || (prev.kind === 'linked' && r.kind === 'computed')) byKey.set(r.key, r);
  }
  const f = new Map<string, FailureRecord>();
  for (const x of failures) if (!byKey.has(x.key)) f.set(x.key, x);
  return { byKey, all: records, failures: f, unavailable };
}

export const EMPTY_INDEX: ResultIndex = buildIndex([]);

/** The same index, with results marked as not reusable (their content is reachable nowhere). */
export function withUnavailable(index: ResultIndex, unavailable: ReadonlyMap<string, string>): ResultIndex {
  return { ...index, unavailable };
}
