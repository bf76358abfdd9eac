/**
 * Runs one compute job: a sparse, detached worktree of the dataset at the job's base commit holding only
 * the datum's inputs, its code, its output directory and DataLad's config; `datalad run` in it; then the
 * worktree is dropped. The dataset's own working tree is never touched, so a failing or concurrent job
 * cannot dirty it. Worktrees share the annex object store, so inputs need no copy and outputs land where
 * the committer can reference them.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runUnchecked } from './adapters/process.js';
import { buildCommand } from './core/command.js';
import { datumOutputs } from './core/identity.js';
import type { Datum } from './core/datums.js';
import type { DataladRunRecord } from './core/record.js';
import type { ResourceUsage } from './core/results.js';
import type { PipelineSpec } from './core/spec.js';
import type { Dataset } from './dataset.js';
import { annexKeyFromLinkTarget } from './core/content-key.js';
import { MODE_GITLINK, MODE_SYMLINK, normalizeDatasetPath } from './core/tree.js';
import { PathEscapeError } from './errors.js';

export interface ComputeJob {
  readonly spec: PipelineSpec;
  readonly datum: Datum;
  readonly key: string;
  readonly outputDir: string;
  readonly baseCommit: string;
}

export type ComputeOutcome =
  | { readonly ok: true; readonly outputsCommit: string; readonly record: DataladRunRecord; readonly resources: ResourceUsage; readonly log: string }
  | { readonly ok: false; readonly exit?: number; readonly reason: string; readonly stderrTail: string; readonly resources: ResourceUsage; readonly log: string };

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

export async function runCompute(ds: Dataset, job: ComputeJob): Promise<ComputeOutcome> {
  // Outside the git dir: datalad does not work in a worktree placed inside `.git`.
  const wt = await mkdtemp(path.join(os.tmpdir(), `minipach-${job.key.slice(0, 12)}-`));
  const started = Date.now();
  const resources = () => ({ wall: (Date.now() - started) / 1000 });
  try {
    await ds.repo.git(['worktree', 'add', '--no-checkout', '--detach', wt, job.baseCommit]);
    const patterns = ['/.datalad/', '.gitattributes', ...job.datum.inputs.map((i) => i.path), ...job.spec.transform.code, job.outputDir].map((p, i) => (i < 2 ? p : sparsePattern(p)));
    await runChecked(['git', 'sparse-checkout', 'set', '--no-cone', '--stdin'], wt, patterns.join('\n') + '\n');
    await runChecked(['git', 'checkout', '-q'], wt);
    for (const sub of job.datum.inputs.flatMap((i) => i.files.filter((f) => f.entry.mode === MODE_GITLINK).map((f) => f.entry))) {
      const problem = await installSubdataset(ds, wt, sub.path, sub.oid);
      if (problem) return { ok: false, reason: problem, stderrTail: '', resources: resources(), log: problem };
    }

    const argv = dataladRunArgv(job);
    const r = await runUnchecked(argv, { cwd: wt, detached: true, timeoutMs: job.spec.datumTimeout ? job.spec.datumTimeout * 1000 : undefined });
    const results = r.stdout.split('\n').filter((l) => l.startsWith('{"action"')).map((l) => JSON.parse(l) as { action: string; status: string; exit_code?: number; run_info?: DataladRunRecord; message?: string });
    const runResult = results.find((x) => x.action === 'run');
    const commandOut = r.stdout.split('\n').filter((l) => !l.startsWith('{"action"')).join('\n');
    const log = `$ ${argv.join(' ')}\n${commandOut}\n--- stderr ---\n${r.stderr}`;
    const stderrTail = tail(r.stderr.split('\n').filter((l) => !l.startsWith('[INFO]')).join('\n'));
    if (r.timedOut) return { ok: false, reason: `timed out after ${job.spec.datumTimeout}s`, stderrTail, resources: resources(), log };
    if (!runResult || runResult.status !== 'ok' || results.some((x) => x.status === 'error') || r.exitCode !== 0) {
      const exit = runResult?.exit_code;
      return { ok: false, exit, reason: exit !== undefined ? `exit ${exit}` : `datalad run failed (exit ${r.exitCode})`, stderrTail, resources: resources(), log };
    }
    // datalad makes no commit when the outputs come out byte-identical: then the base commit holds them.
    const outputsCommit = (await runChecked(['git', 'rev-parse', 'HEAD'], wt)).trim();
    const escape = await findEscapingOutput(ds, job, outputsCommit);
    if (escape) return { ok: false, reason: escape.message, stderrTail, resources: resources(), log };
    return { ok: true, outputsCommit, record: runResult.run_info!, resources: resources(), log };
  } catch (e) {
    // One datum's broken set-up fails that datum, never the whole schedule.
    const reason = `could not run: ${(e as Error).message}`;
    return { ok: false, reason, stderrTail: '', resources: resources(), log: reason };
  } finally {
    // git-annex turns the worktree's `.git` file into a symlink, which `git worktree remove` refuses:
    // delete the directory, then let git forget it.
    await rm(wt, { recursive: true, force: true });
    await runUnchecked(['git', 'worktree', 'prune'], { cwd: ds.dir });
  }
}

async function runChecked(argv: string[], cwd: string, input?: string): Promise<string> {
  const r = await runUnchecked(argv, { cwd, input });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed in ${cwd}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Installs one subdataset of the datum's inputs into the scratch checkout, at its recorded commit, from the
 * dataset's installed copy, and gets its annexed content (hard-linked where possible). Only the datum's own
 * subdatasets are installed; `datalad run` then finds their inputs present.
 */
async function installSubdataset(ds: Dataset, wt: string, subPath: string, commit: string): Promise<string | undefined> {
  const source = path.join(ds.dir, subPath);
  const dest = path.join(wt, subPath);
  const has = await runUnchecked(['git', 'cat-file', '-e', `${commit}^{commit}`], { cwd: ds.dir, env: { GIT_DIR: path.join(source, '.git') } }).catch(() => undefined);
  if (has?.exitCode !== 0) return `subdataset ${subPath} (commit ${commit.slice(0, 12)}) is not installed in ${ds.dir}; run: datalad get -n ${subPath}`;
  // Content comes into the dataset's own copy first (from whatever remotes it has), as `datalad run -i`
  // does for the dataset's other inputs; the scratch clone then hard-links it from there.
  const got = await runUnchecked(['git', 'annex', 'get', '-q', '.'], { cwd: source });
  if (got.exitCode !== 0) return `could not get the content of subdataset ${subPath}: ${got.stderr.trim().split('\n').slice(-2).join(' ')}`;
  await rm(dest, { recursive: true, force: true });
  await runChecked(['git', 'clone', '-q', '--no-checkout', '--shared', source, dest], wt);
  await runChecked(['git', 'checkout', '-q', '--detach', commit], dest);
  await runChecked(['git', 'config', 'annex.hardlink', 'true'], dest);
  await runChecked(['git', 'annex', 'init', '-q', 'minipach scratch'], dest);
  await runChecked(['git', 'annex', 'get', '-q', '.'], dest);
  return undefined;
}

/** An output symlink that leads out of the dataset (annex links are fine), as an error; nothing of it is committed. */
async function findEscapingOutput(ds: Dataset, job: ComputeJob, commit: string): Promise<PathEscapeError | undefined> {
  const entries = datumOutputs(await ds.repo.lsTree(commit, job.outputDir), job.spec.name, job.outputDir).filter((e) => e.mode === MODE_SYMLINK);
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
