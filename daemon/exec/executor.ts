/**
 * The `datalad` executor: one compute job as `datalad run` in a scratch checkout of the dataset at the
 * job's base commit (scratch.ts); the outputs it committed are read once and handed on, then the checkout is
 * dropped. datalad's own machinery end to end, for those who want it (`executor: datalad`).
 */
import type { LsTreeEntry } from '../adapters/git.js';
import { dataladErrors, dataladRun } from '../adapters/datalad.js';
import { READ_ONLY_SETUP_FAILED, watchGroup } from '../adapters/process.js';
import { guardInputs, type InputGuard } from './input-guard.js';
import { datumOutputs } from '../core/identity.js';
import type { ResourceUsage } from '../core/result-index.js';
import { MODE_SYMLINK } from '../core/tree.js';
import { Annex } from '../adapters/annex.js';
import type { Dataset } from '../adapters/dataset.js';
import { SnapshotReader } from '../adapters/snapshot-reader.js';
import { commandFailure, contentlessOutput, failure, damagedInputs, dataladRunRequest, escapingOutput, tail, type ComputeHooks, type ComputeJob, type ComputeOutcome } from './outcome.js';
import { CommandSampler, round, type CommandUsage } from './resources.js';
import { installSubdatasets, scratchCheckout } from './scratch.js';

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
    if (job.spec.transform.image !== null) {
      return failure(`${job.spec.name} names an image: containers run with the native executor (the default, also on workers and Slurm), not executor: datalad`, { resources: resources(), permanent: true });
    }
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
      stopWatchdog = watchGroup(pid);
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
      const reason = damagedInputs(damaged);
      return { ok: false, reason, stderrTail, resources: resources(), log: `${log}\n--- minipach ---\n${reason}\n`, permanent: true };
    }
    if (r.timedOut) return { ok: false, reason: `timed out after ${job.spec.datumTimeout}s`, stderrTail, resources: resources(), log, timedOut: true };
    if (r.exitCode === READ_ONLY_SETUP_FAILED && !runResult) return { ok: false, reason: `could not make the inputs read-only: ${tail(r.stderr, 1)}`, stderrTail, resources: resources(), log };
    if (!runResult || runResult.status !== 'ok' || r.results.some((x) => x.status === 'error') || r.exitCode !== 0) {
      const exit = runResult?.exit_code;
      const reason =
        exit !== undefined
          ? commandFailure(exit, r.stderr)
          : errors.length
            ? `datalad run failed: ${errors[0]}`
            : `datalad run failed (exit ${r.exitCode})`;
      return { ok: false, exit, reason, stderrTail, resources: resources(), log };
    }
    // datalad makes no commit when the outputs come out byte-identical: then the base commit holds them.
    const outputsCommit = await checkout.repo.head();
    const outputs = datumOutputs(await ds.repo.lsTree(outputsCommit, [job.outputDir]), job.spec.name, job.outputDir);
    const annexKeys = await annexKeysOf(ds, outputs);
    const refused = await refusedOutputs(ds, job, outputs, annexKeys);
    if (refused) return { ok: false, reason: refused, stderrTail, resources: resources(), log: `${log}\n--- minipach ---\n${refused}`, permanent: true };
    await hooks.handIn?.(job, { run: { commit: outputsCommit }, annexKeys: [...new Set(annexKeys.values())] });
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

/** The annex keys of outputs (annex links and unlocked files' pointers), by path. */
async function annexKeysOf(ds: Dataset, outputs: readonly LsTreeEntry[]): Promise<Map<string, string>> {
  const keys = await new SnapshotReader(ds.repo).keysOf(outputs);
  return new Map(outputs.flatMap((e) => (keys.get(e)?.annexKey ? [[e.path, keys.get(e)!.annexKey!] as const] : [])));
}

/** Why outputs a `datalad run` committed may not be: a symlink out of the dataset, an annex link to content nobody has. */
async function refusedOutputs(ds: Dataset, job: ComputeJob, outputs: readonly LsTreeEntry[], annexKeys: ReadonlyMap<string, string>): Promise<string | undefined> {
  const links = outputs.filter((e) => e.mode === MODE_SYMLINK);
  const targets = await ds.repo.readBlobs(links.map((e) => e.oid));
  const escape = escapingOutput(job, links.map((e) => ({ path: e.path, target: targets.get(e.oid)?.toString('utf8') ?? '' })));
  if (escape) return escape;
  return contentlessOutput(ds, job, [...annexKeys].map(([p, key]) => ({ path: p, key })));
}
