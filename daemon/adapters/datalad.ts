/**
 * DataLad in minipach's verbs: `datalad run` of one datum (its argv built by a pure function, exported for
 * tests) with its JSON result lines parsed, and `datalad save` of changed paths.
 */
import type { DataladRunRecord } from '../core/record.js';
import { readOnlyArgv, runUnchecked, type RunOptions } from './process.js';

export interface DataladRunRequest {
  /** The commit message's title. */
  readonly message: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** The command, as one shell string (datalad's placeholders allowed). */
  readonly command: string;
}

/** One JSON result line of `datalad -f json ...`. */
export interface DataladResult {
  readonly action: string;
  readonly status: string;
  readonly path?: string;
  readonly message?: string | unknown[];
  readonly exit_code?: number;
  readonly run_info?: DataladRunRecord;
}

export interface DataladRunOutcome {
  readonly argv: readonly string[];
  readonly results: readonly DataladResult[];
  /** What the command printed on stdout (datalad's JSON lines taken out). */
  readonly commandOutput: string;
  readonly stderr: string;
  readonly exitCode: number | undefined;
  readonly timedOut: boolean;
}

/** The argv of `datalad run` for one request; `--explicit`: only the named outputs are saved. */
export function dataladRunArgv(req: DataladRunRequest): string[] {
  return ['datalad', '-f', 'json', 'run', '--explicit', '-m', req.message, ...req.inputs.flatMap((i) => ['-i', i]), ...req.outputs.flatMap((o) => ['-o', o]), req.command];
}

const isResultLine = (l: string) => l.startsWith('{"action"');

/** datalad's message of a result: a string, or `[format, ...args]` with `%s`-style placeholders. */
export function resultMessage(r: DataladResult): string {
  const m = r.message;
  if (typeof m === 'string') return m;
  if (!Array.isArray(m) || !m.length) return '';
  const [format, ...args] = m as [string, ...unknown[]];
  let i = 0;
  return String(format).replace(/%[sdrif]/g, () => String(args[i++] ?? ''));
}

/**
 * What datalad itself said went wrong: its results with status `error` or `impossible`, as lines
 * `action path: status: message` (git-annex's own words are in the message). Empty when none failed.
 */
export function dataladErrors(results: readonly DataladResult[]): string[] {
  return results.filter((r) => r.status === 'error' || r.status === 'impossible').map((r) => `${r.action}${r.path ? ` ${r.path}` : ''}: ${r.status}${resultMessage(r) ? `: ${resultMessage(r)}` : ''}`);
}

/**
 * Runs `datalad run` in `dir`; never throws for the command's own failure (see the outcome). `readOnlyList`:
 * a file listing paths that are read-only to everything it runs (see readOnlyArgv); the record is the same.
 */
export async function dataladRun(dir: string, req: DataladRunRequest, opts: Omit<RunOptions, 'cwd'> & { readOnlyList?: string } = {}): Promise<DataladRunOutcome> {
  const argv = dataladRunArgv(req);
  const { readOnlyList, ...runOpts } = opts;
  const r = await runUnchecked(readOnlyList ? readOnlyArgv(argv, readOnlyList) : argv, { ...runOpts, cwd: dir });
  const lines = r.stdout.split('\n');
  return {
    argv,
    results: lines.filter(isResultLine).map((l) => JSON.parse(l) as DataladResult),
    commandOutput: lines.filter((l) => !isResultLine(l)).join('\n'),
    stderr: r.stderr,
    exitCode: r.exitCode,
    timedOut: r.timedOut,
  };
}

/** `datalad save` of some paths of a dataset; throws with datalad's own message when it fails. */
export async function dataladSave(dir: string, message: string, paths: readonly string[]): Promise<void> {
  const r = await runUnchecked(['datalad', 'save', '-m', message, '--', ...paths], { cwd: dir });
  if (r.exitCode !== 0) throw new Error(`datalad save failed in ${dir}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
}
