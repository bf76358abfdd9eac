/**
 * How people name a datum: `<pipeline>/<datum name>`, with `.` for a pipeline's single root datum (a `/`
 * glob), whose name is empty. Used in logs, reports, the CLI and the HTTP API; parsed back in one place.
 */
import { UsageError } from './errors.js';

export const ROOT_DATUM_LABEL = '.';

/** `fs/sub-01`, or `summary/.` for the root datum. */
export function datumLabel(pipeline: string, name: string): string {
  return `${pipeline}/${name || ROOT_DATUM_LABEL}`;
}

/** `pipeline/datum` -> its parts; throws UsageError for anything else. */
export function parseDatumLabel(label: string): { pipeline: string; name: string } {
  const i = label.indexOf('/');
  if (i <= 0) throw new UsageError(`"${label}" is not <pipeline>/<datum> (use <pipeline>/${ROOT_DATUM_LABEL} for a pipeline's single datum)`);
  const name = label.slice(i + 1);
  return { pipeline: label.slice(0, i), name: name === ROOT_DATUM_LABEL ? '' : name };
}
