/**
 * What every executor shares: a compute job, its outcome, the hooks a worker attaches, what `datalad run`
 * is asked (the record every executor writes), and the checks every result passes before it may be
 * committed.
 */
import path from 'node:path';
import type { ResultToHandIn } from './hand-in.js';
import type { LsTreeEntry } from '../adapters/git.js';
import type { Dataset } from '../adapters/dataset.js';
import { buildCommand } from '../core/command.js';
import type { ContainerDef } from '../core/container.js';
import { annexKeyFromLinkTarget } from '../core/content-key.js';
import { datumLabel } from '../core/datum-label.js';
import type { Datum } from '../core/datums.js';
import { PathEscapeError } from '../core/errors.js';
import type { DataladRunRecord } from '../core/record.js';
import type { ResourceUsage } from '../core/result-index.js';
import type { PipelineSpec } from '../core/spec.js';
import { normalizeDatasetPath } from '../core/tree.js';

export interface ComputeJob {
  readonly spec: PipelineSpec;
  readonly datum: Datum;
  readonly key: string;
  readonly outputDir: string;
  readonly baseCommit: string;
}

/**
 * An output file as a result holds it: its tree entry, and, where no run commit has written the blob yet
 * (the native executor in this process), the blob's bytes, which the committer writes with its commit.
 */
export type OutputEntry = LsTreeEntry & { readonly content?: Buffer };

export type ComputeOutcome =
  | {
      readonly ok: true;
      /**
       * The run commit; or the base commit, when there is none (datalad made none because the outputs came
       * out unchanged; the native executor in this process writes none, its outputs carry their bytes).
       */
      readonly commit: string;
      /** The datum's output files (read once here, handed to the committer). */
      readonly outputs: readonly OutputEntry[];
      readonly record: DataladRunRecord;
      readonly resources: ResourceUsage;
      readonly log: string;
    }
  | {
      readonly ok: false;
      readonly exit?: number;
      readonly reason: string;
      readonly stderrTail: string;
      readonly resources: ResourceUsage;
      readonly log: string;
      /** Set when the command ran into its datum_timeout. */
      readonly timedOut?: boolean;
      /** Set when trying again cannot help (an output escaping the dataset): no retries. */
      readonly permanent?: boolean;
    };

/** What `datalad run` is asked to do for a job: its inputs (and code) are got, its output directory saved. */
export function dataladRunRequest(job: Pick<ComputeJob, 'spec' | 'datum' | 'outputDir'>, container?: ContainerDef) {
  return {
    message: `minipach ${datumLabel(job.spec.name, job.datum.name)}`,
    inputs: [...new Set([...job.datum.inputs.map((i) => i.path), ...job.spec.transform.code])],
    outputs: [job.outputDir],
    // As `datalad containers-run` records it: the image is an extra input, got before a rerun.
    extraInputs: container ? [container.image] : [],
    command: buildCommand(job.spec, job.datum, job.outputDir, container),
  };
}

/** A datum that failed before or around its command, with nothing on stderr: the reason is its log too. */
export function failure(reason: string, opts: { resources?: ResourceUsage; timedOut?: boolean; permanent?: boolean } = {}): ComputeOutcome {
  return { ok: false, reason, stderrTail: '', resources: opts.resources ?? { wall: 0 }, log: reason, ...(opts.timedOut ? { timedOut: true } : {}), ...(opts.permanent ? { permanent: true } : {}) };
}

export interface ComputeHooks {
  /**
   * Hands a successful result on before it counts as done (a worker publishes the run commit and the
   * outputs' content to the origin), and returns the run commit. Rejecting fails the datum, to be tried
   * again. The native executor goes on with the batch's next datum meanwhile.
   */
  readonly handIn?: (job: ComputeJob, result: ResultToHandIn) => Promise<string>;
  /** Called as a datum starts running (a worker counts the try). */
  readonly onStart?: (job: ComputeJob) => Promise<void>;
  /** Called with the pid of the command's process group as it starts (a worker records it for clean-up). */
  readonly onSpawn?: (pid: number) => void;
}

/** The label of a job's datum, for messages. */
export const jobLabel = (job: Pick<ComputeJob, 'spec' | 'datum'>) => datumLabel(job.spec.name, job.datum.name);

/** An output symlink (path -> target) that leads out of the dataset (annex links are fine), as the reason. */
export function escapingOutput(job: Pick<ComputeJob, 'spec' | 'datum'>, links: readonly { path: string; target: string }[]): string | undefined {
  for (const { path: p, target } of links) {
    if (annexKeyFromLinkTarget(target)) continue;
    const resolved = target.startsWith('/') ? undefined : normalizeDatasetPath(path.posix.join(path.posix.dirname(p), target));
    if (resolved === undefined) return new PathEscapeError(`${p} -> ${target}`, `output of ${jobLabel(job)}`).message;
  }
  return undefined;
}

/**
 * An annexed output whose content is not here: the command made an annex link (or pointer file) to a key
 * nobody has. Committed, it would be a result with zero copies anywhere; so the datum fails instead.
 */
export async function contentlessOutput(ds: Dataset, job: Pick<ComputeJob, 'spec' | 'datum'>, annexed: readonly { path: string; key: string }[]): Promise<string | undefined> {
  const missing = new Set(await ds.annex.missingContent(annexed.map((a) => a.key)));
  const bad = annexed.filter((a) => missing.has(a.key));
  if (!bad.length) return undefined;
  const more = bad.length > 1 ? ` (and ${bad.length - 1} more)` : '';
  return `output ${bad[0]!.path}${more} of ${jobLabel(job)} is an annexed file whose content (${bad[0]!.key}) is not there: the command made a link to content nobody has; nothing was committed (write real files into $MINIPACH_OUT)`;
}

/** A failed command's reason: its exit code, and what it tried to write when that was a read-only input. */
export function commandFailure(exit: number, stderr: string): string {
  const readOnly = /^.*Read-only file system.*$/m.exec(stderr)?.[0];
  return `exit ${exit}${readOnly ? `: the command tried to write to a read-only input (${readOnly.trim()})` : ''}`;
}

/** The reason a datum fails when the command changed one of its inputs (seen only without a sandbox). */
export function damagedInputs(damaged: readonly string[]): string {
  return `the command wrote to its input ${damaged.join(', ')}: its content changed; the datum failed (check the object store with: git annex fsck ${damaged[0]})`;
}

export function tail(s: string, lines = 20): string {
  return s.trim().split('\n').slice(-lines).join('\n');
}
