/**
 * How the CLI finds the daemon serving a dataset: `daemon.json` in the dataset's state dir (written by
 * `minipach up`), or MINIPACH_URL. Kept apart from daemon.ts so that commands that only talk to a daemon
 * do not load the queue, the HTTP server and their dependencies.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dataset } from './dataset.js';

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
