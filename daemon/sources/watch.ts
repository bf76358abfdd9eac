/**
 * `minipach watch <dataset>`: files saved into a dataset's working tree become commits and schedules.
 * chokidar reports changes (never inside `.git`, symlinks not followed: annexed files are symlinks and a
 * dangling one has no target to follow); after a quiet period with no change, exactly the changed paths
 * are saved with `datalad save`, and when that made a commit the dataset is scheduled. Cycles never
 * overlap: changes during one are saved by the next.
 */
import { relative, sep } from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { dataladSave } from '../adapters/datalad.js';
import { sysctl } from '../adapters/process.js';
import type { Dataset } from '../adapters/dataset.js';
import { MinipachError } from '../core/errors.js';

export class WatchLimitError extends MinipachError {
  override name = 'WatchLimitError';
  constructor(readonly dir: string, limit: string) {
    super(
      `cannot watch ${dir}: the system's inotify watch limit is reached (fs.inotify.max_user_watches = ${limit}). ` +
        `Raise it, e.g.: sudo sysctl fs.inotify.max_user_watches=524288 (and add that line to /etc/sysctl.conf to keep it)`,
    );
  }
}

export interface WatchCycle {
  readonly paths: readonly string[];
  /** The commit `datalad save` made, or undefined when there was nothing new to save. */
  readonly commit?: string;
}

export interface WatchOptions {
  /** Milliseconds without a change before saving. @defaultValue 2000 */
  readonly quietMs?: number;
  /** Called with the new commit after each save that made one; schedules the dataset. */
  readonly schedule: (cycle: WatchCycle) => Promise<void>;
  readonly onCycle?: (cycle: WatchCycle) => void;
  readonly onError?: (e: Error) => void;
}

export interface Watching {
  /** Resolves once chokidar has read the tree and reports changes. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export function watchDataset(ds: Dataset, opts: WatchOptions): Watching {
  const quiet = opts.quietMs ?? 2000;
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let cycle: Promise<void> = Promise.resolve();
  const watcher: FSWatcher = chokidarWatch(ds.dir, {
    ignoreInitial: true,
    followSymlinks: false,
    ignored: (p: string) => p.split(sep).includes('.git'),
  });
  const fail = async (e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOSPC' || e.code === 'EMFILE') {
      const limit = (await sysctl('fs.inotify.max_user_watches')) ?? 'unknown';
      opts.onError?.(new WatchLimitError(ds.dir, limit));
    } else opts.onError?.(e);
  };
  watcher.on('error', (e) => void fail(e as NodeJS.ErrnoException));
  watcher.on('all', (event, file) => {
    // A new directory is saved through the files in it; naming it too would only double the list.
    if (event === 'addDir') return;
    const rel = relative(ds.dir, file).split(sep).join('/');
    if (!rel || rel.startsWith('..')) return;
    changed.add(rel);
    clearTimeout(timer);
    timer = setTimeout(() => (cycle = cycle.then(saveAndSchedule)), quiet);
  });
  const saveAndSchedule = async () => {
    const paths = [...changed].sort();
    changed.clear();
    if (!paths.length) return;
    try {
      const before = await ds.repo.resolve(ds.ref);
      await dataladSave(ds.dir, `minipach watch: ${paths.length} changed path(s)`, paths).catch((e: Error) => {
        throw new MinipachError(e.message);
      });
      const after = await ds.repo.resolve(ds.ref);
      const result: WatchCycle = { paths, commit: after !== before ? after : undefined };
      if (result.commit) await opts.schedule(result);
      opts.onCycle?.(result);
    } catch (e) {
      opts.onError?.(e as Error);
    }
  };
  const ready = new Promise<void>((res) => watcher.once('ready', () => res()));
  return {
    ready,
    async close() {
      clearTimeout(timer);
      await watcher.close();
      await cycle;
    },
  };
}
