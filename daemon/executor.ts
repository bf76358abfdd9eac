/**
 * Runs one compute job: a sparse, detached worktree of the dataset at the job's base commit holding only
 * the datum's inputs, its code, its output directory and DataLad's config; `datalad run` in it; then the
 * worktree is dropped. The dataset's own working tree is never touched, so a failing or concurrent job
 * cannot dirty it. Worktrees share the annex object store, so inputs need no copy and outputs land where
 * the committer can reference them.
 */
import { lstat, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PathEscapeError } from './errors.js';
import type { LsTreeEntry } from './adapters/git.js';
import { runUnchecked } from './adapters/process.js';
import { buildCommand } from './core/command.js';
import { annexKeyFromLinkTarget } from './core/content-key.js';
import type { Datum } from './core/datums.js';
import { datumOutputs } from './core/identity.js';
import type { DataladRunRecord } from './core/record.js';
import type { ResourceUsage } from './core/results.js';
import type { PipelineSpec } from './core/spec.js';
import { CommandSampler, round, type CommandUsage } from './resources.js';
import { MODE_GITLINK, MODE_SYMLINK, normalizeDatasetPath, type SubdatasetRef } from './core/tree.js';
import type { Dataset } from './dataset.js';

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

/** gitignore-style pattern matching exactly this path (file or directory) from the root. */
function sparsePattern(p: string): string {
  return '/' + p.replace(/[\\*?[\]!#]/g, (c) => '\\' + c);
}

/** The datalad invocation for a job (a command is data; process.ts runs it). */
export function dataladRunArgv(job: ComputeJob): string[] {
  const inputs = [...new Set([...job.datum.inputs.map((i) => i.path), ...job.spec.transform.code])];
  return [
    'datalad', '-f', 'json', 'run', '--explicit',
    '-m', `minipach ${job.spec.name}/${job.datum.name || '.'}`,
    ...inputs.flatMap((i) => ['-i', i]),
    '-o', job.outputDir,
    buildCommand(job.spec, job.datum, job.outputDir),
  ];
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
  // Outside the git dir: datalad does not work in a worktree placed inside `.git`.
  const wt = await mkdtemp(path.join(os.tmpdir(), `minipach-${job.key.slice(0, 12)}-`));
  const started = Date.now();
  let usage: CommandUsage | undefined;
  const resources = (): ResourceUsage => ({
    wall: round((Date.now() - started) / 1000),
    ...(usage ? { commandWall: usage.wall, cpu: usage.cpu, maxRssKiB: usage.maxRssKiB } : {}),
  });
  try {
    await enableWorktreeConfig(ds);
    await withWorktreeLock(ds, () => ds.repo.git(['worktree', 'add', '--no-checkout', '--detach', wt, job.baseCommit]));
    const patterns = ['/.datalad/', '.gitattributes', ...job.datum.inputs.map((i) => i.path), ...job.spec.transform.code, job.outputDir].map((p, i) => (i < 2 ? p : sparsePattern(p)));
    await runChecked(['git', 'sparse-checkout', 'set', '--no-cone', '--stdin'], wt, patterns.join('\n') + '\n');
    await runChecked(['git', 'checkout', '-q'], wt);
    for (const need of subdatasetsNeeded(job.datum)) {
      const problem = await installSubdataset(ds, wt, need);
      if (problem) return { ok: false, reason: problem, stderrTail: '', resources: resources(), log: problem };
    }

    const argv = dataladRunArgv(job);
    let sampler: CommandSampler | undefined;
    const onSpawn = (pid: number) => {
      sampler = new CommandSampler(pid).start();
      hooks.onSpawn?.(pid);
    };
    const r = await runUnchecked(argv, { cwd: wt, detached: true, timeoutMs: job.spec.datumTimeout ? job.spec.datumTimeout * 1000 : undefined, onSpawn }).finally(() => {
      usage = sampler?.stop();
    });
    const results = r.stdout.split('\n').filter((l) => l.startsWith('{"action"')).map((l) => JSON.parse(l) as { action: string; status: string; exit_code?: number; run_info?: DataladRunRecord; message?: string });
    const runResult = results.find((x) => x.action === 'run');
    const commandOut = r.stdout.split('\n').filter((l) => !l.startsWith('{"action"')).join('\n');
    const log = `$ ${argv.join(' ')}\n${commandOut}\n--- stderr ---\n${r.stderr}`;
    const stderrTail = tail(r.stderr.split('\n').filter((l) => !l.startsWith('[INFO]')).join('\n'));
    if (r.timedOut) return { ok: false, reason: `timed out after ${job.spec.datumTimeout}s`, stderrTail, resources: resources(), log, timedOut: true };
    if (!runResult || runResult.status !== 'ok' || results.some((x) => x.status === 'error') || r.exitCode !== 0) {
      const exit = runResult?.exit_code;
      return { ok: false, exit, reason: exit !== undefined ? `exit ${exit}` : `datalad run failed (exit ${r.exitCode})`, stderrTail, resources: resources(), log };
    }
    // datalad makes no commit when the outputs come out byte-identical: then the base commit holds them.
    const outputsCommit = (await runChecked(['git', 'rev-parse', 'HEAD'], wt)).trim();
    const outputs = datumOutputs(await ds.repo.lsTree(outputsCommit, [job.outputDir]), job.spec.name, job.outputDir);
    const escape = await findEscapingOutput(ds, job, outputs);
    if (escape) return { ok: false, reason: escape.message, stderrTail, resources: resources(), log, permanent: true };
    await hooks.afterRun?.(wt, outputsCommit, outputs);
    return { ok: true, commit: outputsCommit, outputs, record: runResult.run_info!, resources: resources(), log };
  } catch (e) {
    // One datum's broken set-up fails that datum, never the whole schedule.
    const reason = `could not run: ${(e as Error).message}`;
    return { ok: false, reason, stderrTail: '', resources: resources(), log: reason };
  } finally {
    await removeWorktree(ds, wt);
  }
}

const worktreeConfigReady = new Map<string, Promise<unknown>>();
const worktreeLocks = new Map<string, Promise<unknown>>();

/**
 * `git worktree add` reads every entry of `.git/worktrees/`, and fails on one that another add has only
 * half written; so adding and removing worktrees of one dataset take turns (a few ms each; the jobs
 * themselves still run in parallel).
 */
function withWorktreeLock<T>(ds: Dataset, fn: () => Promise<T>): Promise<T> {
  const next = (worktreeLocks.get(ds.gitDir) ?? Promise.resolve()).then(fn);
  worktreeLocks.set(ds.gitDir, next.catch(() => undefined));
  return next;
}

/**
 * `sparse-checkout set` turns on `extensions.worktreeConfig` in the shared config when it is off; jobs
 * running at once would race for the config lock, so it is turned on once, before any job.
 */
function enableWorktreeConfig(ds: Dataset): Promise<unknown> {
  let ready = worktreeConfigReady.get(ds.gitDir);
  if (!ready) {
    ready = ds.repo.git(['config', 'extensions.worktreeConfig', 'true']);
    worktreeConfigReady.set(ds.gitDir, ready);
  }
  return ready;
}

/**
 * git-annex turns a worktree's `.git` file into a symlink to its admin dir, which `git worktree remove`
 * refuses. So both are deleted here, for this worktree only: a `git worktree prune` would race with other
 * jobs' `worktree add` and delete their half-made admin dirs.
 */
async function removeWorktree(ds: Dataset, wt: string): Promise<void> {
  const dotGit = path.join(wt, '.git');
  let admin: string | undefined;
  try {
    admin = (await lstat(dotGit)).isSymbolicLink() ? await realpath(dotGit) : /^gitdir: (.*)$/m.exec(await readFile(dotGit, 'utf8'))?.[1]?.trim();
  } catch {
    admin = undefined;
  }
  await rm(wt, { recursive: true, force: true });
  if (admin && path.dirname(admin) === path.join(ds.gitDir, 'worktrees')) await withWorktreeLock(ds, () => rm(admin, { recursive: true, force: true }));
}

async function runChecked(argv: string[], cwd: string, input?: string): Promise<string> {
  const r = await runUnchecked(argv, { cwd, input });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed in ${cwd}: ${r.stderr.trim()}`);
  return r.stdout;
}

interface SubdatasetNeed {
  readonly path: string;
  readonly commit: string;
  /** Paths inside it whose content the datum reads; undefined: all of it (the subdataset is the input). */
  paths?: string[];
}

/** The subdatasets a datum's files live in (outermost first), and which of their files it reads. */
export function subdatasetsNeeded(datum: Datum): SubdatasetNeed[] {
  const needs = new Map<string, SubdatasetNeed>();
  const need = (ref: SubdatasetRef) => needs.get(ref.path) ?? needs.set(ref.path, { ...ref, paths: [] }).get(ref.path)!;
  for (const f of datum.inputs.flatMap((i) => i.files)) {
    const chain = f.entry.subdatasets ?? [];
    chain.forEach(need);
    if (f.entry.mode === MODE_GITLINK) need({ path: f.entry.path, commit: f.entry.oid }).paths = undefined;
    else if (chain.length) {
      const inner = need(chain[chain.length - 1]!);
      inner.paths?.push(f.entry.path.slice(inner.path.length + 1));
    }
  }
  return [...needs.values()].sort((a, b) => a.path.split('/').length - b.path.split('/').length);
}

/**
 * Installs one subdataset into the scratch checkout, at its recorded commit, from the dataset's installed
 * copy, and gets the content the datum reads (hard-linked where possible). Only the datum's own subdatasets
 * are installed; `datalad run` then finds their inputs present.
 */
async function installSubdataset(ds: Dataset, wt: string, sub: SubdatasetNeed): Promise<string | undefined> {
  const source = path.join(ds.dir, sub.path);
  const dest = path.join(wt, sub.path);
  const has = await runUnchecked(['git', 'cat-file', '-e', `${sub.commit}^{commit}`], { cwd: ds.dir, env: { GIT_DIR: path.join(source, '.git') } }).catch(() => undefined);
  if (has?.exitCode !== 0) return `subdataset ${sub.path} (commit ${sub.commit.slice(0, 12)}) is not installed in ${ds.dir}; run: datalad get -n ${sub.path}`;
  // An ancestor of the datum's subdataset is installed too (datalad needs the chain), without content.
  const paths = sub.paths === undefined ? ['.'] : sub.paths;
  if (paths.length) {
    // Content comes into the dataset's own copy first (from whatever remotes it has), as `datalad run -i`
    // does for the dataset's other inputs; the scratch clone then hard-links it from there.
    const got = await runUnchecked(['git', 'annex', 'get', '-q', '--', ...paths], { cwd: source });
    if (got.exitCode !== 0) return `could not get the content of subdataset ${sub.path}: ${got.stderr.trim().split('\n').slice(-2).join(' ')}`;
  }
  await rm(dest, { recursive: true, force: true });
  await runChecked(['git', 'clone', '-q', '--no-checkout', '--shared', source, dest], wt);
  await runChecked(['git', 'checkout', '-q', '--detach', sub.commit], dest);
  await runChecked(['git', 'config', 'annex.hardlink', 'true'], dest);
  await runChecked(['git', 'annex', 'init', '-q', 'minipach scratch'], dest);
  if (paths.length) await runChecked(['git', 'annex', 'get', '-q', '--', ...paths], dest);
  return undefined;
}

/** An output symlink that leads out of the dataset (annex links are fine), as an error; nothing of it is committed. */
async function findEscapingOutput(ds: Dataset, job: ComputeJob, outputs: readonly LsTreeEntry[]): Promise<PathEscapeError | undefined> {
  const entries = outputs.filter((e) => e.mode === MODE_SYMLINK);
  const targets = await ds.repo.readBlobs(entries.map((e) => e.oid));
  for (const e of entries) {
    const target = targets.get(e.oid)?.toString('utf8') ?? '';
    if (annexKeyFromLinkTarget(target)) continue;
    const resolved = target.startsWith('/') ? undefined : normalizeDatasetPath(path.posix.join(path.posix.dirname(e.path), target));
    if (resolved === undefined) return new PathEscapeError(`${e.path} -> ${target}`, `output of ${job.spec.name}/${job.datum.name || '.'}`);
  }
  return undefined;
}

function tail(s: string, lines = 20): string {
  return s.trim().split('\n').slice(-lines).join('\n');
}

export async function writeLog(ds: Dataset, pipeline: string, datum: string, log: string): Promise<string> {
  const file = path.join(ds.stateDir, 'logs', pipeline, `${datum || '_root'}.log`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, log);
  return file;
}
