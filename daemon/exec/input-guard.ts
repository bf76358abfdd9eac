/**
 * A command must not be able to damage its inputs. Annexed inputs are symlinks into the annex object store,
 * which the scratch checkout shares with the dataset: a command that appends to `$MINIPACH_IN_raw` as root
 * (git-annex's read-only modes do not stop root) would corrupt the only copy of raw data.
 *
 * Where the process may (root, or CAP_SYS_ADMIN), the command runs in a private mount namespace in which
 * the datum's input paths and the object files behind them are read-only bind mounts: the write fails with
 * EROFS, like Pachyderm's read-only /pfs inputs. In any case the object files are compared (size, mtime,
 * ctime) before and after the run, and a change fails the datum loudly, naming the file.
 */
import { lstat, realpath, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { canMountReadOnly } from '../adapters/process.js';

export interface InputGuard {
  /** git-annex's words for input content that could not be got (the datum cannot run); undefined: all here. */
  readonly missing?: string;
  /** The file listing what the run must see read-only; undefined when no sandbox is available here. */
  readonly readOnlyList?: string;
  /** After the run: the inputs (dataset paths) whose content changed. */
  changed(): Promise<string[]>;
  dispose(): Promise<void>;
}

interface Watched {
  readonly path: string;
  readonly file: string;
  readonly stamp: string;
}

const stampOf = async (file: string) => {
  const s = await stat(file);
  return `${s.size}:${s.mtimeMs}:${s.ctimeMs}:${s.ino}`;
};

/**
 * Guards `paths` (dataset paths of the datum's input files and code) of the checkout at `dir`, and the
 * directories `dirs`. Content not here yet is got first (`getContent`, as `datalad run -i` would), so
 * that what the command reads is protected too.
 */
export async function guardInputs(
  dir: string,
  paths: readonly string[],
  dirs: readonly string[],
  getContent: (paths: string[]) => Promise<{ ok: boolean; message: string }>,
  { sandboxed = false } = {},
): Promise<InputGuard> {
  const dangling: string[] = [];
  for (const p of paths) {
    const link = await lstat(path.join(dir, p)).catch(() => undefined);
    if (link?.isSymbolicLink() && !(await stat(path.join(dir, p)).catch(() => undefined))) dangling.push(p);
  }
  const got = dangling.length ? await getContent(dangling) : { ok: true, message: '' };
  const watched: Watched[] = [];
  const readOnly = new Set<string>();
  for (const p of paths) {
    const full = path.join(dir, p);
    const link = await lstat(full).catch(() => undefined);
    if (!link) continue;
    // An annexed file's content is the object its symlink leads to (absent: nothing to protect).
    const file = link.isSymbolicLink() ? await realpath(full).catch(() => undefined) : full;
    if (!file) continue;
    watched.push({ path: p, file, stamp: await stampOf(file) });
    readOnly.add(file);
  }
  // (A dangling link, content that could not be got, is left to `datalad run` to report.)
  for (const d of dirs) {
    const real = await realpath(path.join(dir, d)).catch(() => undefined);
    if (real) readOnly.add(real);
  }
  let readOnlyList: string | undefined;
  const listable = [...readOnly].filter((p) => !p.includes('\n'));
  // `sandboxed`: the caller's mount namespace already makes them read-only (a native batch's).
  if (!sandboxed && listable.length && (await canMountReadOnly())) {
    readOnlyList = `${dir}.read-only`;
    await writeFile(readOnlyList, listable.join('\n') + '\n');
  }
  return {
    missing: got.ok ? undefined : got.message,
    readOnlyList,
    async changed() {
      const out: string[] = [];
      for (const w of watched) if ((await stampOf(w.file).catch(() => 'gone')) !== w.stamp) out.push(w.path);
      return out;
    },
    async dispose() {
      if (readOnlyList) await rm(readOnlyList, { force: true });
    },
  };
}
