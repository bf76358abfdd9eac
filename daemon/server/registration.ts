/**
 * How the CLI finds the daemon serving a dataset: `daemon.json` in the dataset's state dir (written by
 * `minipach up`), or MINIPACH_URL. Kept apart from daemon.ts so that commands that only talk to a daemon
 * do not load the queue, the HTTP server and their dependencies.
 */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dataset } from '../adapters/dataset.js';

/** What `daemon.json` in a dataset's state dir says: how the CLI finds the daemon serving it. */
export interface Registration {
  readonly pid: number;
  readonly url: string;
  readonly redisUrl: string;
  readonly queuePrefix: string;
  readonly dataset: string;
  /** The daemon's API token, for the CLI of this clone (the file is readable by its owner only). */
  readonly token?: string;
}

export const REGISTRATION_FILE = 'daemon.json';

/** The daemon serving `ds`, if one is registered there (or named by MINIPACH_URL) and answers, with its token. */
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
  // MINIPACH_TOKEN wins: a daemon reached through MINIPACH_URL left no registration here.
  const token = process.env['MINIPACH_TOKEN'] || reg?.token;
  return { ...(reg ?? { pid: 0, redisUrl: '', queuePrefix: 'minipach', dataset: '' }), url, token };
}

/** Writes `daemon.json` into the dataset's state dir. */
export async function registerDaemon(ds: Dataset, reg: Registration): Promise<void> {
  const file = path.join(ds.stateDir, REGISTRATION_FILE);
  await writeFile(file, JSON.stringify(reg, null, 2) + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
}

/** Removes `daemon.json` if this process wrote it (a newer daemon's registration stays). */
export async function unregisterDaemon(ds: Dataset): Promise<void> {
  const file = path.join(ds.stateDir, REGISTRATION_FILE);
  const reg = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as Partial<Registration>;
  if (reg.pid === process.pid) await rm(file, { force: true });
}
