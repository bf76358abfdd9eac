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

/**
 * `pipeline/datum` -> its parts; throws UsageError for anything else. A datum label names a place in the
 * dataset, so `.`/`..` segments, absolute paths and hidden pipeline directories are never one (a request
 * cannot use a label to reach outside the pipeline).
 */
export function parseDatumLabel(label: string): { pipeline: string; name: string } {
  const i = label.indexOf('/');
  if (i <= 0) throw new UsageError(`"${label}" is not <pipeline>/<datum> (use <pipeline>/${ROOT_DATUM_LABEL} for a pipeline's single datum)`);
  const pipeline = label.slice(0, i);
  const name = label.slice(i + 1) === ROOT_DATUM_LABEL ? '' : label.slice(i + 1);
  const segments = name ? name.split('/') : [];
  if (pipeline.startsWith('.') || pipeline.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..') || /[\0\\]/.test(name)) {
    throw new UsageError(`"${label}" is not a datum: a datum is <pipeline>/<path inside the pipeline>, without "." or ".." segments`);
  }
  return { pipeline, name };
}
