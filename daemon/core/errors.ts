/**
 * minipach's named errors. Each carries what it is about (file, field, datum, command) so that the CLI
 * can print one actionable line and callers can branch on the class, not on message text.
 */

export class MinipachError extends Error {
  override name = 'MinipachError';
}

/** A spec.yml that cannot be used. Disables that pipeline (and what depends on it), never the daemon. */
export class SpecError extends MinipachError {
  override name = 'SpecError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly field: string | undefined,
    readonly problem: string,
    readonly hint?: string,
    /** The column on `line`, from 1, where the file says exactly where (a YAML syntax error). */
    readonly column?: number,
  ) {
    super(
      `${file}${line !== undefined ? `:${line}${column !== undefined ? `:${column}` : ''}` : ''}${field ? ` ${field}` : ''}: ${problem}` +
        (hint ? ` (${hint})` : ''),
    );
  }
}

/** A path in a spec or an output that would leave the dataset. */
export class PathEscapeError extends MinipachError {
  override name = 'PathEscapeError';
  constructor(readonly path: string, readonly where: string) {
    super(`${where}: path "${path}" escapes the dataset; use a path relative to the dataset root, without ".."`);
  }
}

/** A child process that exited non-zero (or could not start). */
export class ProcessError extends MinipachError {
  override name = 'ProcessError';
  constructor(readonly argv: readonly string[], readonly exitCode: number | undefined, readonly stderr: string) {
    const tail = stderr.trim().split('\n').slice(-5).join('\n');
    super(`${argv.slice(0, 3).join(' ')} failed${exitCode !== undefined ? ` (exit ${exitCode})` : ''}${tail ? `: ${tail}` : ''}`);
  }
}

/** Wrong use of the CLI or a dataset path that is not a dataset: exit code 2. */
export class UsageError extends MinipachError {
  override name = 'UsageError';
}

/** The branch moved under the committer (someone pushed): integration must be retried on the new head. */
export class BranchMovedError extends MinipachError {
  override name = 'BranchMovedError';
  constructor(readonly ref: string, readonly expected: string) {
    super(`${ref} moved away from ${expected.slice(0, 12)} while integrating`);
  }
}
