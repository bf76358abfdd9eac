/**
 * The shell command recorded for a datum. It must be self-contained: `datalad rerun` on a plain clone,
 * without minipach, reproduces the outputs. So every variable the transform sees is written into the
 * command with its concrete value, and the output directory is created by the command itself.
 */
import { formatCall, inContainer } from './container.js';
import { shellQuote } from './shell.js';
import type { Datum } from './datums.js';
import type { PipelineSpec } from './spec.js';

export { shellQuote } from './shell.js';

/**
 * datalad formats the command with Python's str.format, so literal braces must be doubled. Its own
 * placeholders (`{inputs}`, `{outputs}`, `{inputs[0]}`, `{pwd}`, `{dspath}`) are left for datalad to fill.
 */
export function escapeForDatalad(cmd: string): string {
  const placeholder = /\{(?:inputs|outputs|pwd|dspath)(?:\[\d+\])?\}/g;
  const parts = cmd.split(placeholder);
  const kept = cmd.match(placeholder) ?? [];
  return parts.map((p, i) => p.replace(/\{/g, '{{').replace(/\}/g, '}}') + (kept[i] ?? '')).join('');
}

/** The environment the transform sees for a datum: minipach's names and Pachyderm's. */
export function datumEnv(spec: PipelineSpec, datum: Datum, outDir: string): Record<string, string> {
  const env: Record<string, string> = { ...spec.transform.env };
  env['MINIPACH_PIPELINE'] = spec.name;
  env['MINIPACH_DATUM'] = datum.name;
  env['MINIPACH_OUT'] = outDir;
  const byName = new Map<string, string[]>();
  for (const i of datum.inputs) byName.set(i.name, [...(byName.get(i.name) ?? []), i.path]);
  for (const [name, paths] of byName) {
    // Several matches under one name (group, union) are listed space-separated.
    env[`MINIPACH_IN_${name}`] = paths.join(' ');
    env[name] = paths.join(' ');
  }
  for (const i of datum.inputs) {
    if (i.joinOn !== undefined) env[`PACH_DATUM_${i.name}_JOIN_ON`] = i.joinOn;
    if (i.groupBy !== undefined) env[`PACH_DATUM_${i.name}_GROUP_BY`] = i.groupBy;
  }
  if (datum.joinKey !== undefined) env['MINIPACH_JOIN_KEY'] = datum.joinKey;
  if (datum.groupKey !== undefined) env['MINIPACH_GROUP_KEY'] = datum.groupKey;
  return env;
}

/**
 * Empties the output directory, as Pachyderm's /pfs/out starts empty. This is part of the recorded command
 * so a rerun starts clean too (datalad does not remove content-less annexed files inside an output
 * directory, and a shell redirect into such a dangling link fails). A `/` datum writes into the pipeline's
 * own directory, which keeps spec.yml and the bookkeeping directory.
 */
export function clearOutputCommand(outDir: string, pipeline: string): string {
  const q = shellQuote(outDir);
  if (outDir !== pipeline) return `rm -rf -- ${q} && mkdir -p -- ${q}`;
  return `mkdir -p -- ${q} && find ${q} -mindepth 1 -maxdepth 1 ! -name spec.yml ! -name .minipach -exec rm -rf -- {} +`;
}

/**
 * `<clear OUT> && env K=V... cmd args` with stdin given as a quoted here-document. When cmd ends in `-c`
 * (as in `cmd: [sh, -c]`), the stdin lines are its script argument instead, which is what that form means.
 */
export function buildCommand(spec: PipelineSpec, datum: Datum, outDir: string, container?: { readonly image: string; readonly cmdexec: string }): string {
  const env = datumEnv(spec, datum, outDir);
  const envPart = Object.keys(env)
    .sort()
    .filter((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map((k) => shellQuote(`${k}=${env[k]}`))
    .join(' ');
  const { cmd, stdin } = spec.transform;
  const script = stdin.join('\n');
  let run: string;
  if (stdin.length && cmd[cmd.length - 1] === '-c') run = [...cmd, script].map(shellQuote).join(' ');
  else if (stdin.length) {
    let tag = 'MINIPACH_STDIN';
    while (script.includes(tag)) tag += '_';
    run = `${cmd.map(shellQuote).join(' ')} <<'${tag}'\n${script}\n${tag}`;
  } else run = cmd.map(shellQuote).join(' ');
  const command = `env ${envPart} ${run}`;
  // In a container: the call datalad-container records, the command inside with the Pachyderm paths.
  const where = container ? formatCall(container.cmdexec, container.image, inContainer(datum, outDir, command)) : command;
  return escapeForDatalad(`${clearOutputCommand(outDir, spec.name)} && ${where}`);
}

/** What datalad fills datalad's placeholders with, as `datalad run` would. */
export interface DataladSubstitutions {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** The directory the command runs in (the dataset root), absolute. */
  readonly pwd: string;
  readonly dspath: string;
}

/**
 * The command as `datalad run` executes it: its placeholders filled (`{inputs}` and `{outputs}` each
 * shell-quoted and space-separated, `{inputs[0]}` one of them), doubled braces made single. The inverse of
 * escapeForDatalad for what buildCommand writes; the record keeps the unexpanded form, as datalad's does.
 */
export function expandDataladCommand(cmd: string, s: DataladSubstitutions): string {
  return cmd.replace(/\{\{|\}\}|\{(inputs|outputs|pwd|dspath)(?:\[(\d+)\])?\}/g, (all, name: string | undefined, index: string | undefined) => {
    if (all === '{{') return '{';
    if (all === '}}') return '}';
    if (name === 'pwd' || name === 'dspath') return s[name];
    const list = (name === 'inputs' ? s.inputs : s.outputs).map(shellQuote);
    return index === undefined ? list.join(' ') : (list[Number(index)] ?? '');
  });
}
