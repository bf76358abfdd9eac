/**
 * How the CLI finds the daemon serving a dataset: `daemon.json` in the dataset's state dir (written by
 * `minipach up`), or MINIPACH_URL. Kept apart from daemon.ts so that commands that only talk to a daemon
 * do not load the queue, the HTTP server and their dependencies.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dataset } from '../adapters/dataset.js';

/** What `daemon.json` in a dataset's state dir says: how the CLI finds the daemon serving it. */
export interface Registration {
  readonly pid: number;
  readonly url: string;
  readonly redisUrl: string;
  readonly queuePrefix: string;
  readonly dataset: string;
}

export const REGISTRATION_FILE = 'daemon.json';

/** The daemon serving `ds`, if one is registered there and answers. */
export async function findDaemon(ds: Dataset): Promise<Registration | undefined> {
  const env = process.env['MINIPACH_URL'];
  let reg: Registration | undefined;
  try {
    reg = JSON.parse(await readFile(path.join(ds.stateDir, REGISTRATION_FILE), 'utf8')) as Registration;
  } catch {
    reg = undefined;
  }
  const url = env || reg?.url;
  if (!url) return undefined;
  try {
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    if (!r.ok) return undefined;
  } catch {
    return undefined;
  }
  return { ...(reg ?? { pid: 0, redisUrl: '', queuePrefix: 'minipach', dataset: '' }), url };
}

/** Writes `daemon.json` into the dataset's state dir. */
export async function registerDaemon(ds: Dataset, reg: Registration): Promise<void> {
  await writeFile(path.join(ds.stateDir, REGISTRATION_FILE), JSON.stringify(reg, null, 2) + '\n');
}

/** Removes `daemon.json` if this process wrote it (a newer daemon's registration stays). */
export async function unregisterDaemon(ds: Dataset): Promise<void> {
  const file = path.join(ds.stateDir, REGISTRATION_FILE);
  const reg = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as Partial<Registration>;
  if (reg.pid === process.pid) await rm(file, { force: true });
}
