/**
 * The native executor (the default): a batch of datums in one scratch checkout, each datum's command run
 * by `sh -c` as `datalad run` would run it, its outputs added by one `git annex add --batch` (annexed or
 * kept in git exactly as the dataset's `.gitattributes` says), and its run commit written with the blobs in
 * one `git fast-import`: a `datalad run` record that `datalad rerun` replays, without `datalad run`'s
 * second of Python per datum.
 *
 * What stays as with `datalad run`: the recorded command and record (cmd, inputs, outputs, pwd, dsid,
 * exit, chain), the annex keys and the tree; inputs are read-only to the command; the output directory
 * starts empty; a failing datum fails alone; each datum's result is handed on as it finishes.
 */
import { existsSync, lstatSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { Annex, AnnexAdder } from '../adapters/annex.js';
import type { Dataset } from '../adapters/dataset.js';
import { storageOf } from '../adapters/storage.js';
import type { TreeChange } from '../adapters/git.js';
import { canMountReadOnly, readOnlyArgv, runUnchecked, startMountSandbox, watchGroup, type MountSandbox } from '../adapters/process.js';
import { expandDataladCommand } from '../core/command.js';
import { CONTAINER_KEYS, containersOfConfig, DATALAD_CONFIG, ImageError, resolveContainer, type ContainerDef } from '../core/container.js';
import { annexKeyFromLinkTarget, annexKeyFromPointer } from '../core/content-key.js';
import { gitBlobOid } from '../core/hash.js';
import { datumOutputs } from '../core/identity.js';
import { formatDataladRunMessage, type DataladRunRecord } from '../core/record.js';
import type { ResourceUsage } from '../core/result-index.js';
import { coveringDirs, MODE_SYMLINK } from '../core/tree.js';
import { guardInputs } from './input-guard.js';
import { commandFailure, contentlessOutput, failure, damagedInputs, dataladRunRequest, escapingOutput, jobLabel, tail, type ComputeHooks, type ComputeJob, type ComputeOutcome, type OutputEntry } from './outcome.js';
import { CommandSampler, round, type CommandUsage } from './resources.js';
import { installSubdatasets, scratchCheckout, subdatasetsNeeded, uninstallSubdatasets, type ScratchCheckout } from './scratch.js';

/** An output file as the run commit holds it, with the bytes of its blob (written by the run commit). */
interface OutputFile {
  readonly path: string;
  readonly mode: string;
  readonly content: Buffer;
  /** For an annexed file: its key. */
  readonly key?: string;
}

/**
 * Runs `jobs` (one base commit) in one scratch checkout, one after another; `settled` is called as each
 * ends. A broken set-up fails every job of the batch with its reason; a datum's failure is its own.
 */
export async function runNativeBatch(ds: Dataset, baseCommit: string, jobs: readonly ComputeJob[], settled: (job: ComputeJob, outcome: ComputeOutcome) => Promise<void>, hooks: ComputeHooks = {}): Promise<void> {
  if (!jobs.length) return;
  const started = Date.now();
  let checkout: ScratchCheckout | undefined;
  let adder: AnnexAdder | undefined;
  let sandbox: MountSandbox | undefined;
  const done = new Set<ComputeJob>();
  // Results being handed in: the next datum runs meanwhile.
  const handingIn: Promise<void>[] = [];
  try {
    // An image named by its path (not a registered name or a reference) is checked out with the inputs.
    const image = (j: ComputeJob) => (j.spec.transform.image && !/[:@]/.test(j.spec.transform.image) ? [j.spec.transform.image] : []);
    const paths = jobs.flatMap((j) => [...j.datum.inputs.map((i) => i.path), ...j.spec.transform.code, ...image(j), j.outputDir]);
    checkout = await scratchCheckout(ds, baseCommit, [...new Set(paths)], jobs[0]!.key.slice(0, 12));
    sandbox = await readOnlySandbox(ds, checkout.dir, jobs);
    await getInputsContent(ds, checkout.dir, jobs);
    adder = new AnnexAdder(checkout.dir);
    const dsid = (await checkout.repo.configIn('.datalad/config', 'datalad.dataset.id')) ?? undefined;
    for (const job of jobs) {
      await hooks.onStart?.(job);
      const outcome = await runOne(ds, checkout, adder, sandbox, dsid, job, hooks)
        .catch((e: Error): ComputeOutcome => {
          // This datum's own trouble (git-annex refusing an output, say) fails it alone; the batch goes on.
          const reason = `could not run: ${e.message}`;
          return { ok: false, reason, stderrTail: '', resources: { wall: round((Date.now() - started) / 1000) }, log: reason };
        })
        .finally(() => uninstallSubdatasets(checkout!.dir, job.datum));
      done.add(job);
      handingIn.push(handedIn(job, outcome, hooks).then((o) => settled(job, o)));
    }
    await Promise.all(handingIn);
  } catch (e) {
    // One batch's broken set-up fails its datums, never the whole schedule.
    const reason = `could not run: ${(e as Error).message}`;
    const resources = { wall: round((Date.now() - started) / 1000) };
    for (const job of jobs) if (!done.has(job)) await settled(job, { ok: false, reason, stderrTail: '', resources, log: reason });
  } finally {
    await Promise.allSettled(handingIn);
    sandbox?.close();
    await adder?.close().catch(() => undefined);
    await checkout?.remove();
  }
}

/**
 * Gets the content of the batch's annexed inputs that is not here (a worker's clone), in one `git annex get`
 * per few hundred files rather than one per datum. What it could not get, each datum's guard tries again,
 * and fails that datum alone with git-annex's words.
 */
async function getInputsContent(ds: Dataset, dir: string, jobs: readonly ComputeJob[]): Promise<void> {
  const missing: string[] = [];
  for (const p of new Set(jobs.flatMap((j) => j.datum.inputs.flatMap((i) => i.files.map((f) => f.entry.path))))) {
    const full = path.join(dir, p);
    if ((await lstat(full).catch(() => undefined))?.isSymbolicLink() && !(await stat(full).catch(() => undefined))) missing.push(p);
  }
  const annex = new Annex(dir);
  const storage = await storageOf(ds);
  for (let i = 0; i < missing.length; i += 500) {
    const some = missing.slice(i, i + 500);
    if (!storage) await annex.get(some);
    // From a bucket that is away the batch waits for it, rather than failing every datum's try.
    else await storage.patiently(async () => (await annex.get(some)).ok || (await storage.check()));
  }
}

/**
 * The batch's mount namespace, where it may have one: the annex object store, and every input path and
 * `code` path of the batch's datums, read-only (by the highest directories that hold no output). Its commands cannot write to any input, `code` file or
 * annexed content, even as root; they may write anywhere else (scratch files at the root, as with `datalad
 * run`). Everything else (git-annex adding outputs) runs outside. A datum whose inputs are in subdatasets
 * (installed later, per datum) gets read-only mounts of its own instead (input-guard.ts).
 */
async function readOnlySandbox(ds: Dataset, dir: string, jobs: readonly ComputeJob[]): Promise<MountSandbox | undefined> {
  if (!(await canMountReadOnly())) return undefined;
  const objects = path.join(await ds.repo.commonDir(), 'annex', 'objects');
  await mkdir(objects, { recursive: true });
  const paths = new Set<string>();
  for (const j of jobs) for (const p of [...j.datum.inputs.map((i) => i.path), ...j.spec.transform.code]) paths.add(p);
  const readOnly: string[] = [objects];
  // Two mount processes a path: the inputs' common directories, not each input (the outputs stay writable).
  for (const p of coveringDirs([...paths], jobs.map((j) => j.outputDir))) {
    const st = await lstat(path.join(dir, p)).catch(() => undefined);
    // Annex links lead into the object store, read-only already; paths with a newline cannot be listed.
    if (st && !st.isSymbolicLink() && !p.includes('\n')) readOnly.push(path.join(dir, p));
  }
  return startMountSandbox(readOnly);
}

async function runOne(ds: Dataset, checkout: ScratchCheckout, adder: AnnexAdder, sandbox: MountSandbox | undefined, dsid: string | undefined, job: ComputeJob, hooks: ComputeHooks): Promise<ComputeOutcome> {
  const started = Date.now();
  let usage: CommandUsage | undefined;
  let commandWall: number | undefined;
  const resources = (): ResourceUsage => ({
    wall: round((Date.now() - started) / 1000),
    ...(usage ? { commandWall: usage.wall, cpu: usage.cpu, maxRssKiB: usage.maxRssKiB } : commandWall !== undefined ? { commandWall } : {}),
  });
  const problem = await installSubdatasets(ds, checkout.dir, job.datum);
  if (problem) return { ok: false, reason: problem, stderrTail: '', resources: resources(), log: problem };
  const container = await containerOf(checkout, job);
  if (typeof container === 'string') return failure(container, { resources: resources(), permanent: true });
  const request = dataladRunRequest(job, container);
  const annex = new Annex(checkout.dir);
  const inputFiles = [...job.datum.inputs.flatMap((i) => i.files.map((f) => f.entry.path)), ...job.spec.transform.code, ...request.extraInputs];
  // The batch's namespace protects inputs present when it began; a datum's subdatasets come later.
  const shared = sandbox && !subdatasetsNeeded(job.datum).length ? sandbox : undefined;
  const guard = await guardInputs(checkout.dir, inputFiles, request.inputs, (missing) => annex.get(missing), { sandboxed: shared !== undefined });
  try {
    if (guard.missing) {
      const reason = `could not get the inputs' content: ${guard.missing.split('\n')[0]}`;
      return { ok: false, reason, stderrTail: guard.missing, resources: resources(), log: `--- git-annex ---\n${guard.missing}\n` };
    }
    const expanded = expandDataladCommand(request.command, { inputs: request.inputs, outputs: request.outputs, pwd: checkout.dir, dspath: checkout.dir });
    const argv = ['/bin/sh', '-c', expanded];
    let sampler: CommandSampler | undefined;
    let stopWatchdog: (() => void) | undefined;
    const onSpawn = (pid: number) => {
      sampler = new CommandSampler(pid, true).start();
      stopWatchdog = watchGroup(pid);
      hooks.onSpawn?.(pid);
    };
    const timeoutMs = job.spec.datumTimeout ? job.spec.datumTimeout * 1000 : undefined;
    const commandStart = Date.now();
    const wrapped = shared ? shared.wrapScript(expanded, checkout.dir) : guard.readOnlyList ? readOnlyArgv(argv, guard.readOnlyList) : argv;
    const r = await runUnchecked(wrapped, { cwd: checkout.dir, detached: true, timeoutMs, onSpawn }).finally(() => {
      usage = sampler?.stop();
      stopWatchdog?.();
      commandWall = round((Date.now() - commandStart) / 1000);
    });
    const log = `$ ${expanded}\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
    const stderrTail = tail(r.stderr);
    const damaged = await guard.changed();
    if (damaged.length) return { ok: false, reason: damagedInputs(damaged), stderrTail, resources: resources(), log: `${log}\n--- minipach ---\n${damagedInputs(damaged)}\n`, permanent: true };
    if (r.timedOut) return { ok: false, reason: `timed out after ${job.spec.datumTimeout}s`, stderrTail, resources: resources(), log, timedOut: true };
    // The runtime's own failure (exit 125: an image it cannot load, a mount it cannot make) is not the
    // command's exit code; 126 and 127 may be either (the shell inside reports a missing command so too).
    if (container && r.exitCode === 125) {
      const reason = `the container ${container.name} did not run (${runtimeOf(container) ?? 'runtime'} exit 125): ${tail(r.stderr, 1) || 'no message'}`;
      return { ok: false, reason, stderrTail, resources: resources(), log };
    }
    const missing = container && (r.exitCode === 126 || r.exitCode === 127) ? ` (in container ${container.name}: a command not found or not executable in the image?)` : '';
    if (r.exitCode !== 0) return { ok: false, exit: r.exitCode, reason: commandFailure(r.exitCode ?? -1, r.stderr) + missing, stderrTail, resources: resources(), log };

    const files = await addOutputs(checkout.dir, adder, job);
    const refused =
      escapingOutput(job, files.filter((f) => f.mode === MODE_SYMLINK && !f.key).map((f) => ({ path: f.path, target: f.content.toString('utf8') }))) ??
      (await contentlessOutput(ds, job, files.flatMap((f) => (f.mode === MODE_SYMLINK && !f.key && annexKeyFromLinkTarget(f.content.toString('utf8')) ? [{ path: f.path, key: annexKeyFromLinkTarget(f.content.toString('utf8'))! }] : []))));
    if (refused) return { ok: false, reason: refused, stderrTail, resources: resources(), log: `${log}\n--- minipach ---\n${refused}`, permanent: true };
    const record: DataladRunRecord = { cmd: request.command, chain: [], ...(dsid ? { dsid } : {}), exit: 0, extra_inputs: [...request.extraInputs], inputs: [...request.inputs], outputs: [...request.outputs], pwd: '.' };
    const outputs: OutputEntry[] = files.map((f) => ({ mode: f.mode, type: 'blob', oid: gitBlobOid(f.content), size: f.content.length, path: f.path, content: f.content }));
    // The run commit is written later, by whoever needs one: in this process the committer writes the
    // blobs with its commits; a worker hands a run commit that carries them to the origin.
    return { ok: true, commit: job.baseCommit, outputs, record, resources: resources(), log };
  } finally {
    await guard.dispose();
  }
}

/**
 * The container a datum runs in, from the checkout's `.datalad/config` (the plan checked it at this
 * commit), with its runtime installed here; or why it cannot run, with what to install or fetch.
 */
async function containerOf(checkout: ScratchCheckout, job: ComputeJob): Promise<ContainerDef | string | undefined> {
  const image = job.spec.transform.image;
  if (image === null) return undefined;
  let container: ContainerDef;
  try {
    const defs = containersOfConfig(await checkout.repo.configMatching(CONTAINER_KEYS, { file: DATALAD_CONFIG }));
    // An annexed image is a link, present in the checkout whether or not its content is here yet.
    container = resolveContainer(image, defs, (p) => lstatExists(path.join(checkout.dir, p)));
  } catch (e) {
    return e instanceof ImageError ? `${e.message}: ${e.hint}` : `cannot find image "${image}": ${(e as Error).message}`;
  }
  const runtime = runtimeOf(container);
  if (runtime && !onPath(runtime)) return `the container runtime ${runtime} is not installed here (not on PATH): install it (e.g. apt install ${runtime}) or run ${job.spec.name} where it is`;
  return container;
}

/** The runtime a container's call starts. */
const runtimeOf = (c: ContainerDef) => /\b(podman|docker|apptainer|singularity)\b/.exec(c.cmdexec)?.[1];

const lstatExists = (p: string) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

const onPath = (cmd: string) => (process.env['PATH'] ?? '').split(':').some((d) => d && existsSync(path.join(d, cmd)));

/** A successful outcome once its result is handed on (a worker's hand-in), or failed for not getting there. */
async function handedIn(job: ComputeJob, outcome: ComputeOutcome, hooks: ComputeHooks): Promise<ComputeOutcome> {
  if (!outcome.ok || !hooks.handIn) return outcome;
  // A root datum's directory is its pipeline's: spec.yml and the bookkeeping dir stay (the committer, not
  // this commit's tree, decides what the branch gets; the run commit carries the blobs and the record).
  const clear: TreeChange[] = job.outputDir === job.spec.name ? [] : [{ path: job.outputDir, remove: true }];
  const changes: TreeChange[] = [...clear, ...outcome.outputs.map((f) => ({ path: f.path, mode: f.mode, content: f.content! }))];
  const write = { from: job.baseCommit, changes, message: formatDataladRunMessage(jobLabel(job), outcome.record) };
  try {
    return { ...outcome, commit: await hooks.handIn(job, { run: { write }, annexKeys: annexKeysOf(outcome.outputs) }) };
  } catch (e) {
    // The origin is away, say: this datum fails, and is tried again.
    const reason = (e as Error).message;
    return { ok: false, reason, stderrTail: '', resources: outcome.resources, log: `${outcome.log}\n--- minipach ---\n${reason}\n` };
  }
}

/** The annex keys of outputs that carry their bytes: annex links and unlocked files' pointers. */
export function annexKeysOf(outputs: readonly OutputEntry[]): string[] {
  const keys = outputs.map((f) => {
    const text = f.content?.toString('utf8') ?? '';
    return f.mode === MODE_SYMLINK ? annexKeyFromLinkTarget(text) : annexKeyFromPointer(text);
  });
  return [...new Set(keys.filter((k): k is string => k !== undefined))];
}

/**
 * The files of an output directory as `datalad save` would record them: each regular file handed to
 * `git annex add` (annexed: its symlink; not: its bytes for git), symlinks the command made kept as they
 * are, executable bits kept. Paths in order, as git lists them.
 */
async function addOutputs(root: string, adder: AnnexAdder, job: ComputeJob): Promise<OutputFile[]> {
  const out: OutputFile[] = [];
  // A root datum's directory is its pipeline's: spec.yml and the bookkeeping dir are never outputs.
  const paths = datumOutputs((await walk(root, job.outputDir)).map((p) => ({ path: p })), job.spec.name, job.outputDir).map((e) => e.path);
  for (const rel of paths) {
    const full = path.join(root, rel);
    const st = await lstat(full);
    if (st.isSymbolicLink()) {
      out.push({ path: rel, mode: MODE_SYMLINK, content: Buffer.from(await readlink(full), 'utf8') });
      continue;
    }
    const added = await adder.add(rel);
    if (added.error) throw new Error(`git annex add ${rel}: ${added.error}`);
    if (added.key) {
      // Locked (a symlink into the object store), or unlocked where the dataset says so (a pointer file).
      const link = (await lstat(full)).isSymbolicLink();
      out.push({ path: rel, mode: link ? MODE_SYMLINK : '100644', content: link ? Buffer.from(await readlink(full), 'utf8') : Buffer.from(`/annex/objects/${added.key}\n`), key: added.key });
    }
    else out.push({ path: rel, mode: st.mode & 0o111 ? '100755' : '100644', content: await readFile(full) });
  }
  return out;
}

/** Dataset paths of the files (and symlinks) below `dir`, sorted as git sorts them (by bytes). */
async function walk(root: string, dir: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (rel: string) => {
    const entries = await readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory()) await visit(p);
      else if (e.isFile() || e.isSymbolicLink()) found.push(p);
    }
  };
  await visit(dir);
  return found.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
