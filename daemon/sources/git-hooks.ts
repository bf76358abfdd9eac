/**
 * `minipach hooks install|uninstall <repo>`: puts the script `hooks/minipach-hook` into a repository (bare
 * or not) as `post-receive` and `post-update-annex`. A hook already there (git-annex installs its own) is kept as
 * `<name>.minipach-chained` and run first by ours; uninstall puts it back.
 */
import { chmod, copyFile, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { GitRepo } from '../adapters/git.js';
import { installedFile } from '../adapters/install-dir.js';
import { UsageError } from '../core/errors.js';

export const HOOK_NAMES = ['post-receive', 'post-update-annex'] as const;
const MARK = 'minipach-hook';
const CHAINED = '.minipach-chained';
/** One script serves as every hook: it tells them apart by the name it is run under. */
const SOURCE = installedFile('hooks/minipach-hook');

export interface HookChange {
  readonly hook: string;
  readonly path: string;
  readonly action: 'installed' | 'updated' | 'installed, chaining the existing hook' | 'removed' | 'removed, restored the chained hook' | 'not installed';
}

/** The repository's git dir and hooks dir (core.hooksPath respected). */
async function hooksDir(repo: string): Promise<{ gitDir: string; hooks: string }> {
  const r = new GitRepo(repo);
  try {
    return { gitDir: await r.gitDir(), hooks: await r.hooksDir() };
  } catch {
    throw new UsageError(`${repo} is not a git repository`);
  }
}

async function isOurs(file: string): Promise<boolean | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : text.includes(MARK);
}

export async function installHooks(repo: string): Promise<{ gitDir: string; changes: HookChange[] }> {
  const { gitDir, hooks } = await hooksDir(repo);
  const changes: HookChange[] = [];
  for (const hook of HOOK_NAMES) {
    const dest = path.join(hooks, hook);
    const ours = await isOurs(dest);
    let action: HookChange['action'] = ours === undefined ? 'installed' : 'updated';
    if (ours === false) {
      if (await exists(dest + CHAINED)) throw new UsageError(`${dest}${CHAINED} already exists; move it away before installing`);
      await rename(dest, dest + CHAINED);
      action = 'installed, chaining the existing hook';
    }
    await copyFile(SOURCE, dest);
    await chmod(dest, 0o755);
    changes.push({ hook, path: dest, action });
  }
  return { gitDir, changes };
}

export async function uninstallHooks(repo: string): Promise<HookChange[]> {
  const { hooks } = await hooksDir(repo);
  const changes: HookChange[] = [];
  for (const hook of HOOK_NAMES) {
    const dest = path.join(hooks, hook);
    if (!(await isOurs(dest))) {
      changes.push({ hook, path: dest, action: 'not installed' });
      continue;
    }
    await rm(dest);
    if (await exists(dest + CHAINED)) {
      await rename(dest + CHAINED, dest);
      changes.push({ hook, path: dest, action: 'removed, restored the chained hook' });
    } else changes.push({ hook, path: dest, action: 'removed' });
  }
  return changes;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
