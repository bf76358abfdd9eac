/**
 * Where a datum's last log is kept: `<state dir>/logs/<pipeline>/<datum>.log` (`_root.log` for the root
 * datum). The one place that builds that path, so a name that came from a request cannot leave the logs
 * directory.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PathEscapeError } from '../core/errors.js';

/** The log file of a datum, confined to `<stateDir>/logs`; throws PathEscapeError for a name that leaves it. */
export function datumLogPath(stateDir: string, pipeline: string, name: string): string {
  const root = path.join(stateDir, 'logs');
  const dir = path.join(root, pipeline);
  const file = path.resolve(dir, `${name || '_root'}.log`);
  const rel = path.relative(dir, file);
  if (!pipeline || /[/\\]/.test(pipeline) || pipeline.startsWith('.') || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new PathEscapeError(`${pipeline}/${name}`, 'log of datum');
  }
  return file;
}

export async function writeDatumLog(stateDir: string, pipeline: string, name: string, log: string): Promise<string> {
  const file = datumLogPath(stateDir, pipeline, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, log);
  return file;
}

/** The datum's last log, or undefined when it has none here. */
export async function readDatumLog(stateDir: string, pipeline: string, name: string): Promise<{ file: string; log: string } | undefined> {
  const file = datumLogPath(stateDir, pipeline, name);
  const log = await readFile(file, 'utf8').catch(() => undefined);
  return log === undefined ? undefined : { file, log };
}
