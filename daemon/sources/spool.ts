/**
 * The event spool: a directory of files, each one event, written durably (write, fsync, rename, fsync the
 * directory) before anybody is told "received". An event's file is deleted only once a schedule that
 * started after it finished; a crash in between leaves the file, and the next daemon replays it. Git hooks
 * write into the repository's own spool (`<git dir>/minipach/spool/`), so a push is recorded even when no
 * daemon runs; HTTP sources write into the daemon's.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** What a file in a spool holds. */
export interface SpooledEvent<T = unknown> {
  readonly file: string;
  readonly body: T;
}

export async function writeSpool(dir: string, body: unknown): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = `${Date.now()}-${randomBytes(6).toString('hex')}.json`;
  const tmp = path.join(dir, `.${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(body));
    await fh.sync();
  } finally {
    await fh.close();
  }
  const file = path.join(dir, name);
  await rename(tmp, file);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  return file;
}

/**
 * The events in a spool, oldest first. Files the git hook writes (`*.event`) are its stdin: a first line
 * naming the hook, the repository's git dir, then `<old> <new> <ref>` lines.
 */
export async function readSpool(dir: string): Promise<SpooledEvent[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.') && (n.endsWith('.json') || n.endsWith('.event'))).sort();
  const out: SpooledEvent[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    if (n.endsWith('.event')) out.push({ file, body: parseHookEvent(text) });
    else {
      try {
        out.push({ file, body: JSON.parse(text) });
      } catch {
        // A torn or foreign file: keep it aside rather than loop on it.
        await rename(file, `${file}.bad`).catch(() => undefined);
      }
    }
  }
  return out;
}

export async function dropSpooled(file: string): Promise<void> {
  await rm(file, { force: true });
}

/** A ref update, as git hooks, Gitea and the HTTP endpoint report it. */
export interface RefUpdate {
  readonly ref: string;
  readonly before?: string;
  readonly after: string;
}

export interface GitEvent {
  readonly kind: 'git';
  /** The repository pushed to: a path (hooks) or a URL. */
  readonly repo: string;
  readonly updates: readonly RefUpdate[];
  /** `post-update-annex`: content arrived (after the refs, possibly). */
  readonly annex?: boolean;
}

export function parseHookEvent(text: string): GitEvent {
  const [hook = '', repo = '', ...lines] = text.split('\n');
  const updates = lines
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 3)
    .map(([before, after, ref]) => ({ ref: ref!, before: before!, after: after! }));
  return { kind: 'git', repo: repo.trim(), updates, annex: hook.trim() === 'post-update-annex' };
}
