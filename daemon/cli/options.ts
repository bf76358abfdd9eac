/**
 * Option parsers and small helpers the commands share: numbers checked with a message that names the flag,
 * a dataset path from the command line, the CPU-hour price, the daemon serving a dataset, and waiting for
 * a signal.
 */
import path from 'node:path';
import { Option } from 'commander';
import { UsageError } from '../core/errors.js';
import type { Dataset } from '../adapters/dataset.js';
import type { Registration } from '../server/registration.js';
import type { DaemonClient } from './daemon-client.js';
import { EXECUTORS } from '../exec/executors.js';

// Commands load git, the daemon's registration and its client when they run, not when they are listed:
// `minipach --help` (and every command's start) would otherwise pay for ~20 modules it does not use.

/** openDataset (adapters/dataset.ts), loaded on first use. */
export async function openDataset(...args: Parameters<typeof import('../adapters/dataset.js').openDataset>): Promise<Dataset> {
  return (await import('../adapters/dataset.js')).openDataset(...args);
}

/** The daemon registered in a dataset (server/registration.ts), loaded on first use. */
export async function findDaemon(ds: Dataset): Promise<Registration | undefined> {
  return (await import('../server/registration.js')).findDaemon(ds);
}

/** A client of the daemon at `url` (daemon-client.ts), loaded on first use. */
export async function daemonClient(url: string, token?: string): Promise<DaemonClient> {
  return new (await import('./daemon-client.js')).DaemonClient(url, token);
}

export function parsePositive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

export function parseCount(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number, got "${v}"`);
  return n;
}

export function parseAmount(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${what} must be a number >= 0, got "${v}"`);
  return n;
}

export const executorOption = () =>
  new Option('--executor <name>', "how a datum's command runs: native (default; a datalad run record without datalad run), datalad (datalad run itself), or slurm (native, in Slurm array tasks)").choices(EXECUTORS);

export const batchSizeOption = () => new Option('--batch-size <n>', 'the most datums one batch (one scratch checkout) holds').argParser((v) => parsePositive(v, '--batch-size'));

export const jobsOption = () => new Option('-j, --jobs <n>', 'datums computed at once (in-process only)').argParser((v) => parsePositive(v, '--jobs')).default(1);

export function cpuHourCostOption(): Option {
  return new Option('--cpu-hour-cost <amount>', 'price of one CPU-hour (default: git config minipach.cpuHourCost)').argParser((v) => parseAmount(v, '--cpu-hour-cost'));
}

/** The price of a CPU-hour: the option, else the dataset's `git config minipach.cpuHourCost`, else none. */
export async function cpuHourCost(ds: Dataset, option: number | undefined): Promise<number | undefined> {
  if (option !== undefined) return option;
  const configured = await ds.repo.config('minipach.cpuHourCost');
  return configured ? parseAmount(configured, 'git config minipach.cpuHourCost') : undefined;
}

/** A dataset for reading history only: git alone will do (no annex needed), and a detached HEAD too. */
export function openDatasetReadOnly(dir: string): Promise<Dataset> {
  return openDataset(dir, undefined, undefined, { readOnly: true });
}

/** A path given on the command line, relative to the dataset root: as typed inside the dataset, or as a dataset path. */
export function datasetPath(ds: Dataset, p: string): string {
  const abs = path.resolve(p);
  const fromCwd = path.relative(ds.dir, abs);
  const rel = !fromCwd.startsWith('..') && !path.isAbsolute(fromCwd) ? fromCwd : path.isAbsolute(p) ? undefined : path.normalize(p);
  if (rel === undefined || rel.startsWith('..') || rel === '' || rel === '.') throw new UsageError(`${p} is not a path inside the dataset ${ds.dir}`);
  return rel.split(path.sep).join('/');
}

/** The daemon serving the dataset at `dir`; a UsageError saying how to start one when there is none. */
export async function needDaemon(dir: string): Promise<{ client: DaemonClient; ds: Dataset }> {
  const ds = await openDataset(dir);
  const reg = await findDaemon(ds);
  if (!reg) throw new UsageError(`no minipach daemon serves ${ds.dir}; start one with: minipach up ${dir} (or set MINIPACH_URL to reach one elsewhere)`);
  return { client: await daemonClient(reg.url, reg.token), ds };
}

/** Resolves after the first SIGINT/SIGTERM has been handled; a second one exits at once. */
export function untilSignal(onSignal: (signal: string) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const handler = (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      onSignal(signal).then(resolve, reject);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
