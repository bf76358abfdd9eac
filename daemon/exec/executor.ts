/**
 * Runs one compute job: a scratch checkout of the dataset at the job's base commit (scratch.ts), `datalad
 * run` in it, and the outputs it committed read once and handed on; then the checkout is dropped.
 */
import path from 'node:path';
import { PathEscapeError } from '../core/errors.js';
import type { LsTreeEntry } from '../adapters/git.js';
import { dataladErrors, dataladRun } from '../adapters/datalad.js';
import { READ_ONLY_SETUP_FAILED, watchOrphan } from '../adapters/process.js';
import { guardInputs, type InputGuard } from './input-guard.js';
import { buildCommand } from '../core/command.js';
import { annexKeyFromLinkTarget } from '../core/content-key.js';
import { datumLabel } from '../core/datum-label.js';
import type { Datum } from '../core/datums.js';
import { datumOutputs } from '../core/identity.js';
import type { DataladRunRecord } from '../core/record.js';
import type { ResourceUsage } from '../core/result-index.js';
import type { PipelineSpec } from '../core/spec.js';
import { MODE_SYMLINK, normalizeDatasetPath } from '../core/tree.js';
import { Annex } from '../adapters/annex.js';
import type { Dataset } from '../adapters/dataset.js';
import { SnapshotReader } from '../adapters/snapshot-reader.js';
import { CommandSampler, round, type CommandUsage } from './resources.js';
import { installSubdatasets, scratchCheckout } from './scratch.js';

export interface ComputeJob {
  readonly spec: PipelineSpec;
  readonly datum: Datum;
  readonly key: string;
  readonly outputDir: string;
  readonly baseCommit: string;
}

export type ComputeOutcome =
  | {
      readonly ok: true;
      /** The run commit (or the base commit, when datalad made none because the outputs came out unchanged). */
      readonly commit: string;
      /** The datum's output files as committed by the run (read once here, handed to the committer). */
      readonly outputs: readonly LsTreeEntry[];
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
export function dataladRunRequest(job: ComputeJob) {
  return {
    message: `minipach ${datumLabel(job.spec.name, job.datum.name)}`,
    inputs: [...new Set([...job.datum.inputs.map((i) => i.path), ...job.spec.transform.code])],
    outputs: [job.outputDir],
    command: buildCommand(job.spec, job.datum, job.outputDir),
  };
}

export interface ComputeHooks {
  /**
   * Runs in the scratch checkout after a successful run, before it is dropped: a worker publishes the run
   * commit and the outputs' content from here. Throwing fails the datum.
   */
  readonly afterRun?: (checkout: string, commit: string, outputs: readonly LsTreeEntry[]) => Promise<void>;
  /** Called with the pid of the command's process group as it starts (a worker records it for clean-up). */
  readonly onSpawn?: (pid: number) => void;
}

export async function runCompute(ds: Dataset, job: ComputeJob, hooks: ComputeHooks = {}): Promise<ComputeOutcome> {
  const started = Date.now();
  let usage: CommandUsage | undefined;
  const resources = (): ResourceUsage => ({
    wall: round((Date.now() - started) / 1000),
    ...(usage ? { commandWall: usage.wall, cpu: usage.cpu, maxRssKiB: usage.maxRssKiB } : {}),
  });
  let checkout: Awaited<ReturnType<typeof scratchCheckout>> | undefined;
  let guard: InputGuard | undefined;
  try {
    const paths = [...job.datum.inputs.map((i) => i.path), ...job.spec.transform.code, job.outputDir];
    checkout = await scratchCheckout(ds, job.baseCommit, paths, job.key.slice(0, 12));
    const problem = await installSubdatasets(ds, checkout.dir, job.datum);
    if (problem) return { ok: false, reason: problem, stderrTail: '', resources: resources(), log: problem };
    const inputFiles = [...job.datum.inputs.flatMap((i) => i.files.map((f) => f.entry.path)), ...job.spec.transform.code];
    const annex = new Annex(checkout.dir);
    guard = await guardInputs(checkout.dir, inputFiles, [...job.datum.inputs.map((i) => i.path), ...job.spec.transform.code], (missing) => annex.get(missing));

    let sampler: CommandSampler | undefined;
    let stopWatchdog: (() => void) | undefined;
    const onSpawn = (pid: number) => {
      sampler = new CommandSampler(pid).start();
      // Should this process be killed outright, the command's process group goes with it.
      stopWatchdog = watchOrphan(pid);
      hooks.onSpawn?.(pid);
    };
    const timeoutMs = job.spec.datumTimeout ? job.spec.datumTimeout * 1000 : undefined;
    const r = await dataladRun(checkout.dir, dataladRunRequest(job), { detached: true, timeoutMs, onSpawn, readOnlyList: guard.readOnlyList }).finally(() => {
      usage = sampler?.stop();
      stopWatchdog?.();
    });
    const runResult = r.results.find((x) => x.action === 'run');
    // datalad's own failures (an input it could not get, a save it could not do) come as JSON results, not
    // on stderr: they go into the log, the stderr tail and the reason, so no failure is left unexplained.
    const errors = dataladErrors(r.results);
    const log = `$ ${r.argv.join(' ')}\n${r.commandOutput}\n--- stderr ---\n${r.stderr}${errors.length ? `\n--- datalad ---\n${errors.join('\n')}\n` : ''}`;
    const stderrTail = tail([...r.stderr.split('\n').filter((l) => !l.startsWith('[INFO]')), ...errors].join('\n'));
    const damaged = await guard.changed();
    if (damaged.length) {
      const reason = `the command wrote to its input ${damaged.join(', ')}: its content changed; the datum failed (check the object store with: git annex fsck ${damaged[0]})`;
      return { ok: false, reason, stderrTail, resources: resources(), log: `${log}\n--- minipach ---\n${reason}\n`, permanent: true };
    }
    if (r.timedOut) return { ok: false, reason: `timed out after ${job.spec.datumTimeout}s`, stderrTail, resources: resources(), log, timedOut: true };
    if (r.exitCode === READ_ONLY_SETUP_FAILED && !runResult) return { ok: false, reason: `could not make the inputs read-only: ${tail(r.stderr, 1)}`, stderrTail, resources: resources(), log };
    if (!runResult || runResult.status !== 'ok' || r.results.some((x) => x.status === 'error') || r.exitCode !== 0) {
      const exit = runResult?.exit_code;
      const readOnly = /^.*Read-only file system.*$/m.exec(r.stderr)?.[0];
      const reason =
        exit !== undefined
          ? `exit ${exit}${readOnly ? `: the command tried to write to a read-only input (${readOnly.trim()})` : ''}`
          : errors.length
            ? `datalad run failed: ${errors[0]}`
            : `datalad run failed (exit ${r.exitCode})`;
      return { ok: false, exit, reason, stderrTail, resources: resources(), log };
    }
    // datalad makes no commit when the outputs come out byte-identical: then the base commit holds them.
    const outputsCommit = await checkout.repo.head();
    const outputs = datumOutputs(await ds.repo.lsTree(outputsCommit, [job.outputDir]), job.spec.name, job.outputDir);
    const refused = (await findEscapingOutput(ds, job, outputs)) ?? (await findContentlessOutput(ds, job, outputs));
    if (refused) return { ok: false, reason: refused, stderrTail, resources: resources(), log: `${log}\n--- minipach ---\n${refused}`, permanent: true };
    await hooks.afterRun?.(checkout.dir, outputsCommit, outputs);
    return { ok: true, commit: outputsCommit, outputs, record: runResult.run_info!, resources: resources(), log };
  } catch (e) {
    // One datum's broken set-up fails that datum, never the whole schedule.
    const reason = `could not run: ${(e as Error).message}`;
    return { ok: false, reason, stderrTail: '', resources: resources(), log: reason };
  } finally {
    await guard?.dispose();
    await checkout?.remove();
  }
}

/** An output symlink that leads out of the dataset (annex links are fine), as the reason; nothing of it is committed. */
async function findEscapingOutput(ds: Dataset, job: ComputeJob, outputs: readonly LsTreeEntry[]): Promise<string | undefined> {
  const entries = outputs.filter((e) => e.mode === MODE_SYMLINK);
  const targets = await ds.repo.readBlobs(entries.map((e) => e.oid));
  for (const e of entries) {
    const target = targets.get(e.oid)?.toString('utf8') ?? '';
    if (annexKeyFromLinkTarget(target)) continue;
    const resolved = target.startsWith('/') ? undefined : normalizeDatasetPath(path.posix.join(path.posix.dirname(e.path), target));
    if (resolved === undefined) return new PathEscapeError(`${e.path} -> ${target}`, `output of ${datumLabel(job.spec.name, job.datum.name)}`).message;
  }
  return undefined;
}

/**
 * An annexed output whose content is not here: the command made an annex link (or pointer file) to a key
 * nobody has. Committed, it would be a result with zero copies anywhere; so the datum fails instead.
 */
async function findContentlessOutput(ds: Dataset, job: ComputeJob, outputs: readonly LsTreeEntry[]): Promise<string | undefined> {
  const keys = await new SnapshotReader(ds.repo).keysOf(outputs);
  const annexed = outputs.flatMap((e) => (keys.get(e)?.annexKey ? [{ path: e.path, key: keys.get(e)!.annexKey! }] : []));
  const missing = new Set(await ds.annex.missingContent(annexed.map((a) => a.key)));
  const bad = annexed.filter((a) => missing.has(a.key));
  if (!bad.length) return undefined;
  const more = bad.length > 1 ? ` (and ${bad.length - 1} more)` : '';
  return `output ${bad[0]!.path}${more} of ${datumLabel(job.spec.name, job.datum.name)} is an annexed file whose content (${bad[0]!.key}) is not there: the command made a link to content nobody has; nothing was committed (write real files into $MINIPACH_OUT)`;
}

function tail(s: string, lines = 20): string {
  return s.trim().split('\n').slice(-lines).join('\n');
}
